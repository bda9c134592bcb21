"""JUnit XML for CI: one ``testsuite`` per run, one ``testcase`` per check, secrets masked.

* Each steady-state check, SLO and guardrail is a ``testcase`` (classname: the experiment
  file; name: the check, prefixed with its phase): a ``failure`` carries the observed value
  and the check's message.
* A check that was not evaluated is ``skipped``: every check of a dry run (nothing was
  injected), the after-recovery checks and SLOs of a run whose precondition failed (the
  method never ran), and any check whose observed value starts with ``not evaluated`` or
  ``skipped`` (or is empty and did not pass).
* A ``run`` testcase reports the outcome when no check explains it: an ``error`` for the
  ``error`` outcome and a ``failure`` for ``aborted`` (both with the run's reason), and a
  ``failure`` for ``failed`` or ``precondition_failed`` runs without a failed check. A dry
  run always has one, skipped when it passed.
* ``system-out`` holds a short summary of the run.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chaos_service.experiments.outputs.files import atomic_write_text
from chaos_service.experiments.outputs.masking import Masker
from chaos_service.experiments.record import CheckResult, RunOutcome, RunRecord

PHASES = {
    "steady_state_before": "before",
    "steady_state_after": "after",
    "slo": "slo",
    "guardrail": "guardrail",
}
NOT_EVALUATED_PREFIXES = ("not evaluated", "skipped", "not run")
_NOT_RUN_AFTER_PRECONDITION = {"steady_state_after", "slo", "guardrail"}
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class CaseVerdict:
    """How one testcase ended: ``passed``, ``failure``, ``error`` or ``skipped``, and why."""

    status: str
    message: str = ""
    detail: str = ""


def check_verdict(record: RunRecord, check: CheckResult, masker: Masker | None = None) -> CaseVerdict:
    """How ``check`` of ``record`` is reported in JUnit (and in the HTML report's status column)."""
    text = masker.text if masker is not None else str
    observed = text(check.observed)
    message = text(check.message)
    if record.dry_run:
        return CaseVerdict("skipped", f"dry run: nothing was injected (observed: {observed or 'nothing'})")
    if not check.passed:
        if _not_evaluated(check):
            return CaseVerdict("skipped", observed or "not evaluated")
        if RunOutcome(record.outcome) is RunOutcome.PRECONDITION_FAILED and check.kind in _NOT_RUN_AFTER_PRECONDITION:
            return CaseVerdict("skipped", "not evaluated: the steady state did not hold before the first fault")
        summary = f"{text(check.name)}: observed {observed}" + (f" ({message})" if message else "")
        return CaseVerdict("failure", summary, f"observed: {observed}\n{message}".rstrip())
    return CaseVerdict("passed", observed)


def run_verdict(record: RunRecord, verdicts: Sequence[CaseVerdict], masker: Masker) -> CaseVerdict | None:
    """The verdict of the ``run`` testcase, or None when the checks already explain the outcome."""
    outcome = RunOutcome(record.outcome)
    reason = masker.text(record.reason) or outcome.value
    if outcome is RunOutcome.ERROR:
        return CaseVerdict("error", reason, reason)
    if outcome is RunOutcome.ABORTED:
        return CaseVerdict("failure", f"aborted: {reason}", reason)
    if outcome is not RunOutcome.PASSED and not any(v.status == "failure" for v in verdicts):
        return CaseVerdict("failure", f"{outcome.value}: {reason}", reason)
    if record.dry_run:
        return CaseVerdict("skipped", f"dry run: {reason}" if record.reason else "dry run: nothing was injected")
    return None


def case_name(check: CheckResult) -> str:
    """The testcase name of a check: its phase, then the check (``after: chat: success_rate >= 0.99``)."""
    return f"{PHASES.get(check.kind, check.kind)}: {check.name}"


def junit_tree(records: RunRecord | Sequence[RunRecord]) -> ET.ElementTree[ET.Element]:
    """The JUnit document for one record or several (one ``testsuite`` each)."""
    runs = [records] if isinstance(records, RunRecord) else list(records)
    root = ET.Element("testsuites", name="chaos-service")
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    total_time = 0.0
    for index, record in enumerate(runs):
        suite = _suite(record, index)
        root.append(suite)
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
        total_time += record.duration
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", _seconds(total_time))
    for element in root.iter():
        element.attrib = {key: _xml_safe(value) for key, value in element.attrib.items()}
        if element.text:
            element.text = _xml_safe(element.text)
    ET.indent(root)
    return ET.ElementTree(root)


def junit_xml(records: RunRecord | Sequence[RunRecord]) -> str:
    """The JUnit document as text, with its XML declaration."""
    body = ET.tostring(junit_tree(records).getroot(), encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'


def write_junit(records: RunRecord | Sequence[RunRecord], path: str | os.PathLike[str]) -> Path:
    """Writes the JUnit file for one record or several to ``path`` atomically; returns the path."""
    return atomic_write_text(path, junit_xml(records))


def _suite(record: RunRecord, index: int) -> ET.Element:
    masker = Masker.collecting(record.environment, record.rollbacks, record.metrics)
    text = masker.text
    classname = text(record.path)
    suite = ET.Element("testsuite", name=text(record.title) or classname, id=str(index))
    suite.set("timestamp", record.started)
    suite.set("time", _seconds(record.duration))
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("run_id", text(record.run_id)),
        ("path", classname),
        ("outcome", RunOutcome(record.outcome).value),
        ("exit_code", str(RunOutcome(record.outcome).exit_code)),
        ("reason", text(record.reason)),
        ("dry_run", str(record.dry_run).lower()),
        ("tags", ", ".join(text(tag) for tag in record.tags)),
        ("catches", text(record.catches or "")),
    ):
        ET.SubElement(properties, "property", name=name, value=value)

    counts = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    verdicts = [check_verdict(record, check, masker) for check in record.checks]
    cases = [(text(case_name(check)), verdict, "0") for check, verdict in zip(record.checks, verdicts, strict=True)]
    run = run_verdict(record, verdicts, masker)
    if run is not None:
        cases.append(("run", run, _seconds(record.duration)))
    for name, verdict, seconds in cases:
        case = ET.SubElement(suite, "testcase", classname=classname, name=name, time=seconds)
        counts["tests"] += 1
        if verdict.status == "failure":
            counts["failures"] += 1
            element = ET.SubElement(case, "failure", message=verdict.message, type=name.split(":", 1)[0])
            element.text = verdict.detail or verdict.message
        elif verdict.status == "error":
            counts["errors"] += 1
            element = ET.SubElement(case, "error", message=verdict.message, type="error")
            element.text = verdict.detail or verdict.message
        elif verdict.status == "skipped":
            counts["skipped"] += 1
            ET.SubElement(case, "skipped", message=verdict.message)
    for key, count in counts.items():
        suite.set(key, str(count))
    ET.SubElement(suite, "system-out").text = _summary(record, masker)
    return suite


def _summary(record: RunRecord, masker: Masker) -> str:
    text = masker.text
    outcome = RunOutcome(record.outcome)
    lines = [
        f"{text(record.title)} ({text(record.path)})",
        f"run {text(record.run_id)}: {outcome.value}" + (f" — {text(record.reason)}" if record.reason else ""),
        f"started {record.started}, {record.duration:.1f} s" + (", dry run" if record.dry_run else ""),
    ]
    passed = sum(check.passed for check in record.checks)
    lines.append(f"checks: {passed}/{len(record.checks)} held")
    applied = sum(fault.applied_at is not None for fault in record.faults)
    lines.append(f"faults: {applied}/{len(record.faults)} applied")
    for fault in record.faults:
        if fault.error:
            lines.append(f"  fault {text(fault.name)}: {text(fault.error)}")
    for probe in record.probes:
        rate = "n/a" if probe.success_rate is None else f"{probe.success_rate:.2%}"
        recovery = text(probe.recovery_text) or "n/a"
        lines.append(f"probe {text(probe.name)}: {probe.ok}/{probe.attempts} ok ({rate}), recovery {recovery}")
    return "\n".join(lines) + "\n"


def _not_evaluated(check: CheckResult) -> bool:
    observed = check.observed.strip().lower()
    return not observed or observed.startswith(NOT_EVALUATED_PREFIXES)


def _xml_safe(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry (control characters, lone surrogates)."""
    return _XML_ILLEGAL.sub("\ufffd", text)


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"
