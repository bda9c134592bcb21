"""The Chaos Toolkit flow: strategies, background activities, dynamic configuration, interrupts."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaos_service.ctk.document import load_ctk_experiment
from chaos_service.ctk.runner import CtkRunner
from chaos_service.experiments.record import RunOutcome
from tests.ctk import activities

MODULE = "tests.ctk.activities"
UNUSED_ENGINE = "http://127.0.0.1:9"


def python(name: str, func: str, kind: str = "action", **arguments: Any) -> dict[str, Any]:
    provider = {"type": "python", "module": MODULE, "func": func, "arguments": arguments}
    return {"type": kind, "name": name, "provider": provider}


def runner(tmp_path: Path, document: dict[str, Any], **options: Any) -> CtkRunner:
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps({"title": "t", "description": "d", **document}))
    return CtkRunner(load_ctk_experiment(path), UNUSED_ENGINE, environ={"TOKEN": "tok-123456"}, **options)


def hypothesis(marker: Path) -> dict[str, Any]:
    probe = python("marker-present", "exists", "probe", path=str(marker))
    return {"title": "the marker is there", "probes": [{**probe, "tolerance": True}]}


def test_continuously_reports_deviations_during_the_method_without_failing_the_run(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    marker.touch()
    document = {
        "runtime": {"hypothesis": {"strategy": "continuously"}},
        "steady-state-hypothesis": hypothesis(marker),
        "method": [
            {**python("remove", "remove", path=str(marker)), "pauses": {"after": 0.6}},
            python("create", "create", path=str(marker)),
        ],
    }
    result = runner(tmp_path, document, hypothesis_frequency=0.1).run()
    during = result.journal["steady_states"]["during"]
    assert during and any(not state["steady_state_met"] for state in during)
    assert (result.status, result.deviated, result.outcome) == ("completed", False, RunOutcome.PASSED)
    assert "steady-state checks during the method deviated" in result.reason


def test_background_activities_run_beside_the_next_ones(tmp_path: Path) -> None:
    stamps = tmp_path / "stamps"
    document = {
        "method": [
            {**python("slow", "stamp", path=str(stamps), seconds=0.5), "background": True},
            python("next", "stamp", path=str(stamps)),
        ]
    }
    result = runner(tmp_path, document).run()
    first, second = sorted(float(line) for line in stamps.read_text().split())
    assert second - first < 0.4  # the second did not wait for the first
    assert [entry["status"] for entry in result.journal["run"]] == ["succeeded", "succeeded"]
    assert result.outcome is RunOutcome.PASSED


def test_dynamic_configuration_and_substitution_reach_the_providers_and_secrets_are_masked(tmp_path: Path) -> None:
    document = {
        "configuration": {
            "greeting": {
                "type": "probe",
                "name": "say-hello",
                "provider": {"type": "process", "path": "echo", "arguments": ["hello"]},
            }
        },
        "secrets": {"api": {"token": {"type": "env", "key": "TOKEN"}}},
        "method": [
            {
                **python("echo", "echo", "probe", value="${greeting} world"),
                "provider": {
                    "type": "python",
                    "module": MODULE,
                    "func": "echo",
                    "arguments": {"value": "${greeting} world"},
                    "secrets": ["api"],
                },
            }
        ],
    }
    result = runner(tmp_path, document).run()
    output = result.journal["run"][0]["output"]
    assert output == {"value": "hello world", "secrets": {"token": "***"}}  # used, then masked in the journal


def test_an_interrupt_stops_the_method_and_the_rollbacks_still_run_unless_ctk_compat(tmp_path: Path) -> None:
    marker = tmp_path / "rolled-back"
    document = {
        "method": [python("hold", "hold", seconds=0.5), python("never", "fail")],
        "rollbacks": [python("roll-back", "create", path=str(marker))],
    }
    for compat, rolled_back in [(False, True), (True, False)]:
        marker.unlink(missing_ok=True)
        activities.holding.clear()
        run = runner(tmp_path, document, ctk_compat=compat)
        threading.Thread(target=lambda r=run: (activities.holding.wait(10), r.interrupt("SIGTERM"))).start()
        result = run.run()
        assert (result.status, result.outcome, result.ctk_exit_code) == ("interrupted", RunOutcome.ABORTED, 1)
        assert [entry["activity"]["name"] for entry in result.journal["run"]] == ["hold"]  # "never" never ran
        assert marker.exists() is rolled_back, compat


def test_a_dry_run_runs_the_probes_and_no_action(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    marker.touch()
    document = {
        "steady-state-hypothesis": hypothesis(marker),
        "method": [python("remove", "remove", path=str(marker))],
        "rollbacks": [python("undo", "create", path=str(tmp_path / "undone"))],
    }
    result = runner(tmp_path, document, dry_run=True).run()
    assert marker.exists() and not (tmp_path / "undone").exists()
    assert result.journal["run"][0].get("dry") is True and result.journal["rollbacks"][0].get("dry") is True
    assert result.outcome is RunOutcome.PASSED


@pytest.mark.parametrize(
    ("strategy", "phases"),
    [
        ("default", ("before", "after")),
        ("before-method-only", ("before",)),
        ("after-method-only", ("after",)),
        ("during-method-only", ("during",)),
    ],
)
def test_each_hypothesis_strategy_checks_the_steady_state_when_it_says(
    tmp_path: Path, strategy: str, phases: tuple[str, ...]
) -> None:
    marker = tmp_path / "marker"
    marker.touch()
    document = {
        "steady-state-hypothesis": hypothesis(marker),
        "method": [{**python("wait", "stamp", path=str(tmp_path / "s")), "pauses": {"after": 0.3}}],
    }
    result = runner(tmp_path, document, hypothesis_strategy=strategy, hypothesis_frequency=0.1).run()
    states = result.journal["steady_states"]
    ran = tuple(phase for phase in ("before", "after", "during") if states[phase])
    assert ran == phases


def test_a_probe_as_tolerance_gets_the_output_as_value(tmp_path: Path) -> None:
    def document(status: int) -> dict[str, Any]:
        tolerance = {
            "type": "probe",
            "name": "status-is",
            "provider": {"type": "python", "module": MODULE, "func": "has_status", "arguments": {"status": status}},
        }
        probe = {
            "type": "probe",
            "name": "true-exits-0",
            "provider": {"type": "process", "path": "true"},
            "tolerance": tolerance,
        }
        return {"steady-state-hypothesis": {"title": "h", "probes": [probe]}, "method": []}

    assert runner(tmp_path, document(0)).run().outcome is RunOutcome.PASSED
    refused = runner(tmp_path, document(1)).run()
    assert refused.outcome is RunOutcome.PRECONDITION_FAILED
    assert refused.journal["steady_states"]["before"]["probes"][0]["tolerance_met"] is False


def test_yaml_files_are_read_like_json_ones(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    marker.touch()
    document = {"title": "t", "description": "d", "steady-state-hypothesis": hypothesis(marker), "method": []}
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(document))
    experiment = load_ctk_experiment(path)
    assert experiment.hypothesis is not None and experiment.hypothesis[0].name == "marker-present"
    assert CtkRunner(experiment, UNUSED_ENGINE).run().outcome is RunOutcome.PASSED
