"""The JUnit file: one testsuite per run, one testcase per check, counts that match the record."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from chaos_service.experiments.outputs import junit_xml, write_junit
from chaos_service.experiments.record import RunOutcome, RunRecord
from tests.experiments.outputs import records
from tests.experiments.outputs.records import SECRETS

# outcome → (tests, failures, errors, skipped) for the six checks of `records.checks`, plus a `run` case
EXPECTED = {
    RunOutcome.PASSED: (6, 0, 0, 0),
    RunOutcome.FAILED: (6, 2, 0, 0),  # the after-recovery check and the recovery SLO
    RunOutcome.ABORTED: (7, 2, 0, 0),  # the tripped guardrail, and the run
    RunOutcome.PRECONDITION_FAILED: (6, 1, 0, 0),  # later checks are skipped only when not evaluated
    RunOutcome.ERROR: (7, 0, 1, 0),
}


def _suite(record: RunRecord, tmp_path: Path) -> ET.Element:
    root = ET.parse(write_junit(record, tmp_path / "junit.xml")).getroot()
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    return suites[0]


def _counts(suite: ET.Element) -> tuple[int, ...]:
    return tuple(int(suite.get(key, "-1")) for key in ("tests", "failures", "errors", "skipped"))


@pytest.mark.parametrize("outcome", list(RunOutcome))
def test_counts_match_the_checks(outcome: RunOutcome, tmp_path: Path) -> None:
    record = records.record(outcome)
    suite = _suite(record, tmp_path)
    cases = suite.findall("testcase")
    assert _counts(suite) == EXPECTED[outcome]
    assert len(cases) == int(suite.get("tests", "0"))
    assert len(suite.findall("testcase/failure")) == EXPECTED[outcome][1]
    assert len(suite.findall("testcase/error")) == EXPECTED[outcome][2]
    assert suite.get("name") == record.title
    assert suite.get("time") == "30.000"
    assert {case.get("classname") for case in cases} == {"experiments/postgres_partition.yaml"}
    names = [case.get("name") for case in cases[:6]]
    assert names[:3] == [
        "before: chat: success_rate >= 0.99",
        "before: chat: p95_latency <= 10s",
        "after: chat: success_rate >= 0.99",
    ]
    assert "held" in (suite.findtext("system-out") or "")


def test_failures_carry_the_observed_values(tmp_path: Path) -> None:
    suite = _suite(records.record(RunOutcome.FAILED), tmp_path)
    failures = {
        case.get("name"): case.find("failure") for case in suite.iter("testcase") if case.find("failure") is not None
    }
    after = failures["after: chat: success_rate >= 0.99"]
    assert after is not None
    assert "observed 0.870" in after.get("message", "")
    slo = failures["slo: recovery_time <= 60s"]
    assert slo is not None
    assert "> 30 s (censored)" in slo.get("message", "")
    assert "chat never recovered" in (slo.text or "")


def test_error_outcome_is_an_error_with_the_reason(tmp_path: Path) -> None:
    suite = _suite(records.record(RunOutcome.ERROR), tmp_path)
    run = suite.find("testcase[@name='run']")
    assert run is not None
    error = run.find("error")
    assert error is not None
    assert error.get("message", "").startswith("could not reach postgresql://chat:***@127.0.0.1:5432/chat")


def test_checks_not_evaluated_are_skipped(tmp_path: Path) -> None:
    record = records.record(RunOutcome.PRECONDITION_FAILED)
    for check in record.checks[2:]:
        check.passed, check.observed = False, "not evaluated: precondition failed"
    suite = _suite(record, tmp_path)
    assert _counts(suite) == (6, 1, 0, 4)
    skipped = [case.get("name") for case in suite.iter("testcase") if case.find("skipped") is not None]
    assert skipped[0] == "after: chat: success_rate >= 0.99"


def test_dry_run_skips_every_check(tmp_path: Path) -> None:
    record = records.record(RunOutcome.PASSED, dry_run=True)
    record = dataclasses.replace(
        record, probes=[], faults=[dataclasses.replace(f, applied_at=None, removed_at=None) for f in record.faults]
    )
    suite = _suite(record, tmp_path)
    assert _counts(suite) == (7, 0, 0, 7)
    assert suite.find("properties/property[@name='dry_run']").get("value") == "true"  # type: ignore[union-attr]


def test_several_runs_one_file_and_escaping(tmp_path: Path) -> None:
    odd = records.record(RunOutcome.FAILED, title='<b>&"x"</b> \x1b[31m')
    runs = [records.record(outcome) for outcome in RunOutcome] + [odd]
    text = write_junit(runs, tmp_path / "all.xml").read_text(encoding="utf-8")
    root = ET.fromstring(text)
    suites = root.findall("testsuite")
    assert len(suites) == 6
    assert suites[-1].get("name") == '<b>&"x"</b> \ufffd[31m'
    for key in ("tests", "failures", "errors", "skipped"):
        assert int(root.get(key, "-1")) == sum(int(s.get(key, "0")) for s in suites)
    assert root.get("time") == "180.000"
    for secret in SECRETS:
        assert secret not in text, secret
    assert junit_xml(odd).startswith('<?xml version="1.0" encoding="UTF-8"?>')
