"""A Chaos Toolkit run as a `RunRecord`, so the summary, JUnit and HTML reports show it like any run.

Each steady-state probe before and after the method is a check (its tolerance, what it gave);
each action of the method and each rollback is a fault window with its error, if any.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from chaos_service.ctk.document import CtkExperiment
from chaos_service.ctk.runner import CtkResult
from chaos_service.experiments.record import CheckResult, FaultWindow, RunRecord

PHASES = {"before": "steady_state_before", "after": "steady_state_after"}
OBSERVED_LIMIT = 200


def run_record(experiment: CtkExperiment, result: CtkResult) -> RunRecord:
    journal = result.journal
    start = datetime.fromisoformat(journal["start"])
    record = RunRecord(
        run_id=uuid.uuid4().hex[:12],
        title=str(journal["experiment"].get("title") or experiment.title),
        path=experiment.path,
        tags=list(experiment.tags),
        started=journal["start"],
        ended=journal.get("end", ""),
        duration=float(journal.get("duration") or 0.0),
        outcome=result.outcome,
        reason=result.reason,
    )
    for phase, kind in PHASES.items():
        state = journal["steady_states"].get(phase)
        for entry in (state or {}).get("probes", []):
            activity = entry["activity"]
            record.checks.append(
                CheckResult(
                    kind=kind,
                    name=f"{activity.get('name')}: tolerance {_short(activity.get('tolerance'))}",
                    passed=bool(entry.get("tolerance_met")),
                    observed=_short(entry.get("output")) if entry["status"] == "succeeded" else "probe failed",
                    message="; ".join(entry.get("exception", [])),
                )
            )
    for entry in [*journal["run"], *journal["rollbacks"]]:
        activity = entry["activity"]
        if activity.get("type") != "action":
            continue
        provider = activity.get("provider") or {}
        offset = (datetime.fromisoformat(entry["start"]) - start).total_seconds()
        record.faults.append(
            FaultWindow(
                name=str(activity.get("name")),
                fault=str(provider.get("func") or provider.get("path") or provider.get("url") or provider.get("type")),
                target=_target(provider),
                planned_at=offset,
                duration=float(entry.get("duration") or 0.0),
                ttl=0.0,
                applied_at=offset,
                removed_at=offset + float(entry.get("duration") or 0.0),
                error="; ".join(entry.get("exception", [])) or None,
            )
        )
    return record


def _target(provider: dict[str, Any]) -> str:
    arguments = provider.get("arguments")
    if isinstance(arguments, dict):
        for key in ("proxy_name", "for_proxy", "name"):
            if key in arguments:
                return str(arguments[key])
    return str(provider.get("module") or provider.get("url") or provider.get("path") or "")


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= OBSERVED_LIMIT else text[:OBSERVED_LIMIT] + "…"
