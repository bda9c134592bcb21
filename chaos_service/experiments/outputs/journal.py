"""The run's JSON journal: a superset of the useful parts of Chaos Toolkit's journal, secrets masked.

Top level: ``chaos-service-version``, ``journal-version``, ``platform``, ``node``, the
experiment (``title``, ``path``, ``tags``, ``catches``), ``run_id``, ``started`` / ``ended``
(ISO-8601 UTC), ``duration`` (seconds), ``status`` (the outcome: ``passed``, ``failed``,
``aborted``, ``precondition_failed``, ``error``), ``exit_code``, the Chaos Toolkit-style
``deviated`` flag (the system did not hold its SLO or steady state after the faults: the
``failed`` outcome), ``reason``, ``dry_run``, ``steady_states`` (``before`` / ``after``, each
with ``steady_state_met``), ``checks``, ``faults`` (their windows), ``probes`` (summaries and
a compact series), ``metrics``, ``rollbacks`` and ``environment``.

Times in ``faults`` and in each probe's ``series.t`` are seconds from the run's start.
A probe's series is columnar: ``t`` (scheduled offset), ``outcome`` and ``latency`` (seconds),
one entry per attempt in schedule order.
"""

from __future__ import annotations

import json
import math
import os
import platform
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from chaos_service import __version__
from chaos_service.experiments.outputs.files import atomic_write_text, is_censored, time_origin
from chaos_service.experiments.outputs.masking import Masker
from chaos_service.experiments.record import CheckResult, FaultWindow, ProbeSummary, RunOutcome, RunRecord

JOURNAL_VERSION = 1
MAX_ERRORS = 10  # distinct error messages kept per probe, most frequent first

_STEADY_KINDS = {"before": "steady_state_before", "after": "steady_state_after"}


def journal_dict(record: RunRecord) -> dict[str, Any]:
    """The journal of ``record`` as a JSON-ready dict, secrets masked throughout."""
    masker = Masker.collecting(record.environment, record.rollbacks, record.metrics)
    doc: dict[str, Any] = _finite(_document(record, masker))
    return doc


def journal_json(record: RunRecord) -> str:
    """The journal as JSON text: indented, with each probe's series kept on one line per column."""
    doc = journal_dict(record)
    compact: dict[str, str] = {}
    for probe in doc["probes"]:
        for column, values in probe["series"].items():
            token = f"@@series-{uuid.uuid4().hex}@@"
            compact[f'"{token}"'] = json.dumps(values, separators=(",", ":"), allow_nan=False)
            probe["series"][column] = token
    text = json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False)
    for token, values in compact.items():
        text = text.replace(token, values, 1)
    return text + "\n"


def write_journal(record: RunRecord, path: str | os.PathLike[str]) -> Path:
    """Writes the journal of ``record`` to ``path`` atomically; returns the path."""
    return atomic_write_text(path, journal_json(record))


def _document(record: RunRecord, masker: Masker) -> dict[str, Any]:
    text = masker.text
    origin = time_origin(record)
    outcome = RunOutcome(record.outcome)
    return {
        "chaos-service-version": __version__,
        "journal-version": JOURNAL_VERSION,
        "platform": platform.platform(),
        "node": text(platform.node()),
        "run_id": text(record.run_id),
        "title": text(record.title),
        "path": text(record.path),
        "tags": [text(tag) for tag in record.tags],
        "catches": text(record.catches) if record.catches else None,
        "started": record.started,
        "ended": record.ended,
        "duration": record.duration,
        "status": outcome.value,
        "exit_code": outcome.exit_code,
        "deviated": outcome is RunOutcome.FAILED,
        "reason": text(record.reason),
        "dry_run": record.dry_run,
        "steady_states": _steady_states(record.checks, masker),
        "checks": [_check(check, masker) for check in record.checks],
        "faults": [_fault(fault, masker) for fault in record.faults],
        "probes": [_probe(probe, origin, masker) for probe in record.probes],
        "metrics": masker.value(record.metrics),
        "rollbacks": masker.value(record.rollbacks),
        "environment": masker.value(record.environment),
    }


def _steady_states(checks: list[CheckResult], masker: Masker) -> dict[str, Any]:
    states: dict[str, Any] = {}
    for phase, kind in _STEADY_KINDS.items():
        of_kind = [check for check in checks if check.kind == kind]
        states[phase] = (
            {
                "steady_state_met": all(check.passed for check in of_kind),
                "checks": len(of_kind),
                "failed": [masker.text(check.name) for check in of_kind if not check.passed],
            }
            if of_kind
            else None
        )
    return states


def _check(check: CheckResult, masker: Masker) -> dict[str, Any]:
    return {
        "kind": check.kind,
        "name": masker.text(check.name),
        "passed": check.passed,
        "observed": masker.text(check.observed),
        "message": masker.text(check.message),
    }


def _fault(fault: FaultWindow, masker: Masker) -> dict[str, Any]:
    return {
        "name": masker.text(fault.name),
        "fault": masker.text(fault.fault),
        "target": masker.text(fault.target),
        "planned_at": fault.planned_at,
        "duration": fault.duration,
        "ttl": fault.ttl,
        "applied": fault.applied_at is not None,
        "applied_at": fault.applied_at,
        "removed_at": fault.removed_at,
        "evidence": masker.text(fault.evidence) if fault.evidence is not None else None,
        "error": masker.text(fault.error) if fault.error is not None else None,
    }


def _probe(probe: ProbeSummary, origin: float, masker: Masker) -> dict[str, Any]:
    results = sorted(probe.results, key=lambda r: r.scheduled)
    raw_errors = Counter(r.error or r.outcome.value for r in results if not r.ok)
    errors: Counter[str] = Counter()
    for error, count in raw_errors.items():
        errors[masker.text(error)] += count
    return {
        "name": masker.text(probe.name),
        "type": probe.type,
        "attempts": probe.attempts,
        "ok": probe.ok,
        "failed": probe.attempts - probe.ok,
        "success_rate": probe.success_rate,
        "latency": {"estimator": probe.estimator, **probe.latency},
        "detection": probe.detection,
        "recovery": {
            "time": probe.recovery,
            "resolution": probe.resolution,
            "censored": is_censored(probe.recovery, probe.recovery_text),
            "text": masker.text(probe.recovery_text),
        },
        "errors": [{"error": error, "count": count} for error, count in errors.most_common(MAX_ERRORS)],
        "series": _Series(
            t=[_finite_round(r.scheduled - origin, 3) for r in results],
            outcome=[r.outcome.value for r in results],
            latency=[_finite_round(r.latency, 6) for r in results],
        ),
    }


class _Series(dict[str, list[Any]]):
    """A probe's columnar series, built with finite values only."""


def _finite_round(value: float, digits: int) -> float | None:
    return round(value, digits) if math.isfinite(value) else None


def _finite(obj: Any) -> Any:
    """``obj`` with NaN and infinities (not valid JSON) replaced by ``None``; probe series are built finite."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        if isinstance(obj, _Series):
            return obj
        return {key: _finite(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [_finite(value) for value in obj]
    return obj
