"""The HTML report: self-contained, escaped, masked, with the verdict, the tables and the timeline chart."""

from __future__ import annotations

import dataclasses
import functools
import html
import re
import time
from pathlib import Path

import pytest

from chaos_service.experiments.outputs import html_report, write_html, write_html_suite
from chaos_service.experiments.record import FaultWindow, RunOutcome, RunRecord
from tests.experiments.outputs import records
from tests.experiments.outputs.records import SECRETS

RESOURCE = re.compile(
    r"""<script|<link|<img|<iframe|<object|<embed|@import|\b(?:src|href|xlink:href|action)\s*=\s*(?!["']?#)"""
    r"""|url\(\s*(?!["']?#)""",
    re.IGNORECASE,
)


def _assert_self_contained(page: str) -> None:
    found = RESOURCE.findall(page)
    assert not found, found
    markup = re.sub(r">[^<]*<", "><", page)  # tags only: URLs in the record's text are not resources
    assert not re.search(r"https?://", markup)


@functools.cache
def _page(outcome: RunOutcome, directory: Path) -> str:
    return write_html(records.record(outcome), directory / f"{outcome.value}.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("outcome", list(RunOutcome))
def test_report_shows_verdict_checks_faults_and_chart(
    outcome: RunOutcome, tmp_path_factory: pytest.TempPathFactory
) -> None:
    record = records.record(outcome)
    page = _page(outcome, tmp_path_factory.getbasetemp())
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 1
    assert f'<div class="outcome">{outcome.value.replace("_", " ")}</div>' in page
    if record.reason:
        assert html.escape(record.reason.split(" (")[0].split("postgresql")[0]) in page
    for check in record.checks:
        assert html.escape(check.name) in page
    statuses = re.findall(r'<span class="st st-(\w+)">', page)
    assert len(statuses) == len(record.checks)
    assert statuses.count("failure") == sum(not c.passed for c in record.checks)
    for fault in record.faults:
        assert f"<td>{fault.name}</td>" in page
    for probe in record.probes:
        assert f"<td>{probe.name}</td>" in page
    _assert_self_contained(page)
    for secret in SECRETS:
        assert secret not in page, secret


def test_chart_draws_faults_probes_detection_and_recovery(tmp_path_factory: pytest.TempPathFactory) -> None:
    page = _page(RunOutcome.PASSED, tmp_path_factory.getbasetemp())
    svg = page[page.index("<svg") : page.index("</svg>")]
    for text in ("partition → postgres", "latency → redis", "not applied", "detected +0.20 s", "recovered +0.40 s"):
        assert text in svg, text
    assert "seconds from the run&#x27;s start" in svg or "seconds from the run's start" in svg
    failed = _page(RunOutcome.FAILED, tmp_path_factory.getbasetemp())
    assert "not recovered (&gt; 30 s)" in failed


def test_every_text_is_escaped() -> None:
    record = records.record(RunOutcome.FAILED, title='<b>&"x"</b>')
    record.checks[0].name = "<script>alert(1)</script> $x$ >= 1"
    record.probes[0].name = "chat<i> $5 \\$"
    record.faults[0].name = "<u>fault</u>"
    page = html_report(record)
    assert '<b>&"x"</b>' not in page
    assert "&lt;b&gt;&amp;&quot;x&quot;&lt;/b&gt;" in page
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; $x$ &gt;= 1" in page
    assert "<i>" not in page and "<u>" not in page
    assert "<title>&lt;b&gt;&amp;&quot;x&quot;&lt;/b&gt;</title>" in page


def test_dry_run_and_run_without_results() -> None:
    record = records.record(RunOutcome.ERROR, dry_run=True)
    record = dataclasses.replace(record, probes=[], faults=[])
    page = html_report(record)
    assert "<svg" not in page
    assert "No timeline" in page
    assert "dry run" in page
    statuses = re.findall(r'<span class="st st-(\w+)">', page)
    assert set(statuses) == {"skipped"}


def test_suite_page_has_a_summary_and_one_chart_per_run(tmp_path: Path) -> None:
    runs = [records.record(RunOutcome.PASSED), records.record(RunOutcome.FAILED)]
    page = write_html_suite(runs, tmp_path / "suite.html").read_text(encoding="utf-8")
    assert page.count("<svg") == len(runs)
    for index in range(len(runs)):
        assert f'href="#run-{index}"' in page and f'id="run-{index}"' in page
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))  # charts share one page without clashing ids
    _assert_self_contained(page)
    for secret in SECRETS:
        assert secret not in page, secret


def test_large_run_renders_quickly_and_stays_small(tmp_path: Path) -> None:
    base = records.record(RunOutcome.FAILED)
    probes = [
        records.summary(f"p{i}", "http", records.probe_results(f"p{i}", 1.0, 100.0, (20 + i % 30, 60), 1.0))
        for i in range(150)
    ]
    crowd = records.probe_results("crowd", 0.001, 100.0, (20, 60), 2.0)  # 100,000 results
    probes.append(records.summary("crowd", "websocket_chat", crowd))
    faults = [
        FaultWindow(f"f{i}", "latency", f"target{i % 25}", i * 0.3, 2.0, 32.0, i * 0.3, i * 0.3 + 2.0)
        for i in range(300)
    ]
    record: RunRecord = dataclasses.replace(base, probes=probes, faults=faults, duration=100.0)
    started = time.perf_counter()
    page = write_html(record, tmp_path / "big.html").read_text(encoding="utf-8")
    elapsed = time.perf_counter() - started
    assert elapsed < 30.0
    svg = page[page.index("<svg") : page.index("</svg>")]
    assert len(svg) < 2_000_000
    assert "12 of 151 probes charted" in page
    assert "300 faults grouped by target" in page
    assert page.count("<tr>") > 450  # every fault and probe is in its table
