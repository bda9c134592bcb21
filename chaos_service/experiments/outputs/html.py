"""The HTML report: one self-contained page per run (or per suite of runs), readable offline.

A run's section shows the verdict (outcome, exit code, reason) first, then the timeline
chart (inline SVG, see `chart`), the checks (passed, failed or skipped, with the observed
values), the faults and their windows, the probes (success, latency percentiles with
their estimator, detection and recovery), the metrics, the rollbacks and the environment.
A suite page starts with a table of its runs, linked to their sections.

The page has no scripts and loads nothing: its styles are inline and the charts are SVG
elements. Every text taken from a record is HTML-escaped and has its secrets masked.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaos_service import __version__
from chaos_service.experiments.outputs.files import atomic_write_text
from chaos_service.experiments.outputs.junit import case_name, check_verdict
from chaos_service.experiments.outputs.masking import Masker
from chaos_service.experiments.record import RunOutcome, RunRecord

if TYPE_CHECKING:  # the chart module loads matplotlib: imported when a report is drawn
    from chaos_service.experiments.outputs.chart import ChartLimits

OUTCOME_COLORS = {
    "passed": "#1e7e34",
    "failed": "#c62828",
    "aborted": "#e65100",
    "precondition_failed": "#6a1b9a",
    "error": "#37474f",
}
STATUS_LABELS = {"passed": "passed", "failure": "failed", "error": "error", "skipped": "skipped"}

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#222;
margin:0 auto;max-width:1200px;padding:16px 24px;background:#fafafa}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:18px;margin:28px 0 6px}h3{font-size:15px;margin:18px 0 6px}
.meta{color:#555;font-size:13px}.meta span{margin-right:14px}
.verdict{color:#fff;border-radius:6px;padding:12px 16px;margin:12px 0}
.verdict .outcome{font-size:24px;font-weight:700;text-transform:uppercase;letter-spacing:.04em}
.verdict .reason{font-size:15px;margin-top:4px;white-space:pre-wrap}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px;margin:4px 0 8px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.st{font-weight:700;border-radius:3px;padding:1px 6px;color:#fff;white-space:nowrap}
.st-passed{background:#1e7e34}.st-failure{background:#c62828}.st-error{background:#37474f}
.st-skipped{background:#9e9e9e}
figure{margin:8px 0;background:#fff;border:1px solid #ddd;padding:6px}
figcaption{color:#555;font-size:12px}svg.timeline{width:100%;height:auto;display:block}
pre{background:#fff;border:1px solid #ddd;padding:8px;overflow:auto;font-size:12px}
.empty{color:#777;font-style:italic}section.run{border-top:3px solid #ccc;margin-top:28px}
footer{color:#888;font-size:12px;margin:32px 0 8px}
"""


def html_report(record: RunRecord, *, limits: ChartLimits | None = None) -> str:
    """The report of one run as a complete HTML page."""
    title = Masker.collecting(record.environment, record.rollbacks, record.metrics).text(record.title)
    return _page(title or record.path, _run_section(record, 0, limits, heading="h1"))


def html_suite(
    records: Sequence[RunRecord], *, title: str = "Experiment runs", limits: ChartLimits | None = None
) -> str:
    """One page for several runs: a summary table, then each run's section with its own chart."""
    rows = []
    for index, record in enumerate(records):
        masker = _masker(record)
        outcome = RunOutcome(record.outcome).value
        held = sum(check.passed for check in record.checks)
        rows.append(
            "<tr>"
            f'<td class="num">{index + 1}</td>'
            f'<td><a href="#run-{index}">{_e(masker.text(record.title) or masker.text(record.path))}</a></td>'
            f"<td>{_e(masker.text(record.path))}</td>"
            f"<td>{_badge(outcome)}</td>"
            f'<td class="num">{record.duration:.1f} s</td>'
            f'<td class="num">{held}/{len(record.checks)}</td>'
            f'<td class="num">{len(record.faults)}</td>'
            f"<td>{_e(masker.text(record.reason))}</td>"
            "</tr>"
        )
    counts = {o.value: sum(RunOutcome(r.outcome) is o for r in records) for o in RunOutcome}
    tally = ", ".join(f"{n} {name}" for name, n in counts.items() if n) or "no runs"
    summary = f"<h1>{_e(title)}</h1><p class=meta>{len(records)} runs: {_e(tally)}</p>" + _table(
        ["#", "experiment", "file", "outcome", "duration", "checks held", "faults", "reason"], rows
    )
    sections = [_run_section(record, index, limits, heading="h2") for index, record in enumerate(records)]
    return _page(
        title, summary + "".join(f'<section class="run" id="run-{i}">{s}</section>' for i, s in enumerate(sections))
    )


def write_html(record: RunRecord, path: str | os.PathLike[str]) -> Path:
    """Writes the report of one run to ``path`` atomically; returns the path."""
    return atomic_write_text(path, html_report(record))


def write_html_suite(
    records: Sequence[RunRecord], path: str | os.PathLike[str], *, title: str = "Experiment runs"
) -> Path:
    """Writes one page for several runs to ``path`` atomically; returns the path."""
    return atomic_write_text(path, html_suite(records, title=title))


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>{body}"
        f"<footer>chaos-service {_e(__version__)}</footer></body></html>\n"
    )


def _run_section(record: RunRecord, index: int, limits: ChartLimits | None, *, heading: str) -> str:
    masker = _masker(record)
    text = masker.text
    outcome = RunOutcome(record.outcome)
    meta = [
        f"<span>file <code>{_e(text(record.path))}</code></span>",
        f"<span>run <code>{_e(text(record.run_id))}</code></span>",
        f"<span>started {_e(record.started)}</span>",
        f"<span>ended {_e(record.ended or '—')}</span>",
        f"<span>{record.duration:.2f} s</span>",
    ]
    if record.tags:
        meta.append(f"<span>tags: {_e(', '.join(text(tag) for tag in record.tags))}</span>")
    if record.catches:
        meta.append(f"<span>catches: {_e(text(record.catches))}</span>")
    if record.dry_run:
        meta.append("<span><strong>dry run</strong>: nothing was injected</span>")
    verdict = (
        f'<div class="verdict" style="background:{OUTCOME_COLORS[outcome.value]}">'
        f'<div class="outcome">{_e(outcome.value.replace("_", " "))}</div>'
        f'<div class="reason">{_e(text(record.reason) or _default_reason(outcome))}</div>'
        f'<div class="meta" style="color:#eee">exit code {outcome.exit_code}</div></div>'
    )
    from chaos_service.experiments.outputs.chart import timeline_svg

    svg, caption = timeline_svg(record, masker=masker, limits=limits, id_prefix=f"run{index}")
    chart = (
        f"<figure>{svg}<figcaption>{_e(caption)}</figcaption></figure>"
        if svg
        else f'<p class="empty">{_e(caption)}</p>'
    )
    return (
        f"<{heading}>{_e(text(record.title) or text(record.path))}</{heading}>"
        f'<div class="meta">{"".join(meta)}</div>{verdict}'
        f"<h3>Timeline</h3>{chart}"
        f"<h3>Checks</h3>{_checks(record, masker)}"
        f"<h3>Faults</h3>{_faults(record, masker)}"
        f"<h3>Probes</h3>{_probes(record, masker)}"
        f"<h3>Metrics</h3>{_metrics(record, masker)}"
        f"<h3>Rollbacks</h3>{_rollbacks(record, masker)}"
        f"<h3>Environment</h3>{_environment(record, masker)}"
    )


def _checks(record: RunRecord, masker: Masker) -> str:
    rows = []
    for check in record.checks:
        verdict = check_verdict(record, check, masker)
        note = masker.text(check.message) if verdict.status != "skipped" else verdict.message
        rows.append(
            f"<tr><td>{_e(case_name(check).split(':', 1)[0])}</td><td>{_e(masker.text(check.name))}</td>"
            f'<td><span class="st st-{verdict.status}">{STATUS_LABELS[verdict.status]}</span></td>'
            f"<td>{_e(masker.text(check.observed))}</td><td>{_e(note)}</td></tr>"
        )
    return _table(["phase", "check", "status", "observed", "message"], rows) if rows else _empty("no checks")


def _faults(record: RunRecord, masker: Masker) -> str:
    rows = [
        f"<tr><td>{_e(masker.text(f.name))}</td><td>{_e(masker.text(f.fault))}</td><td>{_e(masker.text(f.target))}</td>"
        f"{_num(f.planned_at)}{_num(f.duration)}{_num(f.ttl)}{_num(f.applied_at)}{_num(f.removed_at)}"
        f"<td>{_e(masker.text(f.evidence or ''))}</td><td>{_e(masker.text(f.error or ''))}</td></tr>"
        for f in record.faults
    ]
    headers = [
        "name",
        "fault",
        "target",
        "planned at",
        "duration",
        "ttl",
        "applied at",
        "removed at",
        "evidence",
        "error",
    ]
    return _table(headers, rows) if rows else _empty("no faults")


def _probes(record: RunRecord, masker: Masker) -> str:
    rows = []
    for p in record.probes:
        rate = "—" if p.success_rate is None else f"{p.success_rate:.2%}"
        latency = " / ".join(_seconds(p.latency.get(q)) for q in ("p50", "p95", "p99"))
        resolution = f" (± {p.resolution:.3g} s)" if p.resolution is not None and p.recovery is not None else ""
        rows.append(
            f"<tr><td>{_e(masker.text(p.name))}</td><td>{_e(p.type)}</td>"
            f'<td class="num">{p.attempts}</td><td class="num">{p.ok}</td><td class="num">{rate}</td>'
            f'<td class="num">{_e(latency)}</td><td>{_e(p.estimator)}</td>'
            f'<td class="num">{_e(_seconds(p.detection))}</td>'
            f"<td>{_e(masker.text(p.recovery_text) or _seconds(p.recovery))}{_e(resolution)}</td></tr>"
        )
    headers = ["probe", "type", "attempts", "ok", "success", "p50 / p95 / p99", "estimator", "detection", "recovery"]
    return _table(headers, rows) if rows else _empty("no probes")


def _metrics(record: RunRecord, masker: Masker) -> str:
    flat: list[tuple[str, Any]] = []
    _flatten(masker.value(record.metrics), "", flat)
    rows = [f"<tr><td>{_e(key)}</td><td>{_e(_show(value))}</td></tr>" for key, value in flat]
    return _table(["metric", "value"], rows) if rows else _empty("no metrics")


def _rollbacks(record: RunRecord, masker: Masker) -> str:
    rows = []
    for item in masker.value(record.rollbacks):
        if isinstance(item, dict):
            name = item.get("name", "")
            rest = {k: v for k, v in item.items() if k != "name"}
            rows.append(f"<tr><td>{_e(_show(name))}</td><td><code>{_e(_show(rest))}</code></td></tr>")
        else:
            rows.append(f"<tr><td></td><td><code>{_e(_show(item))}</code></td></tr>")
    return _table(["rollback", "details"], rows) if rows else _empty("no rollbacks")


def _environment(record: RunRecord, masker: Masker) -> str:
    if not record.environment:
        return _empty("no environment recorded")
    dump = json.dumps(masker.value(record.environment), indent=2, ensure_ascii=False, default=str)
    return f"<details><summary>as used (secrets masked)</summary><pre>{_e(dump)}</pre></details>"


def _flatten(value: Any, prefix: str, out: list[tuple[str, Any]]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out.append((prefix or "value", value))


def _masker(record: RunRecord) -> Masker:
    return Masker.collecting(record.environment, record.rollbacks, record.metrics)


def _default_reason(outcome: RunOutcome) -> str:
    return {
        RunOutcome.PASSED: "Every check held.",
        RunOutcome.FAILED: "A check did not hold.",
        RunOutcome.ABORTED: "The run was stopped before its end.",
        RunOutcome.PRECONDITION_FAILED: "The steady state did not hold before the first fault.",
        RunOutcome.ERROR: "The run could not proceed.",
    }[outcome]


def _table(headers: list[str], rows: list[str]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _badge(outcome: str) -> str:
    return f'<span class="st" style="background:{OUTCOME_COLORS[outcome]}">{_e(outcome.replace("_", " "))}</span>'


def _num(value: float | None) -> str:
    return f'<td class="num">{"—" if value is None else f"{value:.3f}"}</td>'


def _seconds(value: float | None) -> str:
    if value is None or value != value:
        return "—"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _empty(text: str) -> str:
    return f'<p class="empty">{_e(text)}</p>'


def _e(text: str) -> str:
    return html.escape(text, quote=True)
