"""The JSON journal: its fields, its compact series, atomic writes and masked secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos_service import __version__
from chaos_service.experiments.outputs import journal_dict, journal_json, write_journal
from chaos_service.experiments.record import RunOutcome
from tests.experiments.outputs import records
from tests.experiments.outputs.records import SECRETS, T0


def _strict_load(text: str) -> dict[str, object]:
    def reject(constant: str) -> object:
        raise ValueError(f"not JSON: {constant}")

    loaded: dict[str, object] = json.loads(text, parse_constant=reject)
    return loaded


def test_journal_has_the_run_its_faults_probes_and_checks(tmp_path: Path) -> None:
    record = records.record(RunOutcome.PASSED)
    path = write_journal(record, tmp_path / "run" / "journal.json")
    doc = _strict_load(path.read_text(encoding="utf-8"))

    assert doc["chaos-service-version"] == __version__
    assert (doc["title"], doc["path"], doc["tags"]) == (record.title, record.path, ["postgres", "partition"])
    assert (doc["run_id"], doc["started"], doc["ended"], doc["duration"]) == (
        record.run_id,
        record.started,
        record.ended,
        30.0,
    )
    assert (doc["status"], doc["deviated"], doc["exit_code"], doc["dry_run"]) == ("passed", False, 0, False)
    assert doc["steady_states"]["before"]["steady_state_met"] is True  # type: ignore[index]

    partition = doc["faults"][0]  # type: ignore[index]
    assert partition["name"] == "partition-postgres"
    assert (partition["planned_at"], partition["applied_at"], partition["removed_at"], partition["ttl"]) == (
        5.0,
        5.01,
        15.02,
        40.0,
    )
    assert partition["applied"] is True
    killed = doc["faults"][2]  # type: ignore[index]
    assert (killed["applied"], killed["applied_at"]) == (False, None)
    assert killed["error"].startswith("process gone")

    chat = doc["probes"][0]  # type: ignore[index]
    assert (chat["attempts"], chat["ok"], chat["failed"]) == (60, 40, 20)
    assert chat["latency"] == {"estimator": "nearest-rank", "p50": 0.012, "p95": 0.016, "p99": 2.0}
    assert chat["recovery"] == {"time": 0.4, "resolution": 0.1, "censored": False, "text": "0.40 s ± 0.10 s"}
    assert chat["detection"] == 0.2
    assert {e["count"] for e in chat["errors"]} == {10}
    series = chat["series"]
    assert len(series["t"]) == len(series["outcome"]) == len(series["latency"]) == 60
    assert series["t"][:3] == [0.0, 0.5, 1.0]  # seconds from the run's start, not raw monotonic readings
    assert series["outcome"][10:13] == ["ok", "error", "timeout"]
    assert series["latency"][11:13] == [0.002, 5.0]
    assert "details" not in json.dumps(series)

    assert doc["checks"][2] == {  # type: ignore[index]
        "kind": "steady_state_after",
        "name": "chat: success_rate >= 0.99",
        "passed": True,
        "observed": "1.000",
        "message": "",
    }
    assert doc["metrics"]["event_delivery"] == 0.998  # type: ignore[index]
    assert doc["metrics"]["nan_metric"] is None  # type: ignore[index]
    assert doc["rollbacks"][0]["status"] == 204  # type: ignore[index]
    assert doc["environment"]["llm"]["max_tokens"] == 256  # type: ignore[index]
    assert [p.name for p in tmp_path.joinpath("run").iterdir()] == ["journal.json"]  # no temporary file left


@pytest.mark.parametrize("outcome", list(RunOutcome))
def test_no_secret_anywhere_in_the_journal(outcome: RunOutcome, tmp_path: Path) -> None:
    text = write_journal(records.record(outcome), tmp_path / "j.json").read_text(encoding="utf-8")
    _strict_load(text)
    for secret in SECRETS:
        assert secret not in text, secret
    doc = json.loads(text)
    env = doc["environment"]
    assert env["auth"] == {"secret": "***", "roles": ["viewer", "operator"]}
    assert env["endpoints"]["postgres"] == "postgresql://chat:***@127.0.0.1:5432/chat"
    assert env["endpoints"]["redis"] == "redis://:***@127.0.0.1:6379/0"
    assert env["endpoints"]["chat_ws"] == "ws://127.0.0.1:8000/ws?token=***&user=a"
    assert env["llm"]["api_key"] == "***"
    assert env["headers"]["Authorization"] == "***"
    assert doc["metrics"]["store"]["password"] == "***"


def test_deviated_and_exit_code_follow_the_outcome() -> None:
    for outcome in RunOutcome:
        doc = journal_dict(records.record(outcome))
        assert doc["status"] == outcome.value
        assert doc["exit_code"] == outcome.exit_code
        assert doc["deviated"] is (outcome is RunOutcome.FAILED)
    failed = journal_dict(records.record(RunOutcome.FAILED))
    assert failed["probes"][0]["recovery"]["censored"] is True
    assert failed["steady_states"]["after"] == {
        "steady_state_met": False,
        "checks": 1,
        "failed": ["chat: success_rate >= 0.99"],
    }


def test_series_is_compact_and_rewrites_replace_the_file(tmp_path: Path) -> None:
    record = records.record(RunOutcome.PASSED)
    text = journal_json(record)
    assert '"t": [0.0,0.1,0.2,' in text  # one line per column, not one line per value
    path = tmp_path / "journal.json"
    write_journal(record, path)
    record.title = "second"
    write_journal(record, path)
    assert json.loads(path.read_text(encoding="utf-8"))["title"] == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.json"]


def test_results_are_measured_from_the_run_origin() -> None:
    record = records.record(RunOutcome.PASSED)
    assert record.probes[0].results[0].scheduled == T0
    record.t0 = 0.0  # an older record without its origin: the earliest result is the origin
    assert journal_dict(record)["probes"][1]["series"]["t"][:2] == [0.0, 0.1]
