"""`chaos-service demo`: sandboxes up, built-in experiments passing against them with their
progress shown, the summary table and the report, sandboxes down again."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from chaos_service.demo.suite import BUILT_IN
from chaos_service.sandbox.supervisor import process_alive
from tests.support.sandbox import child_pids

LIMIT = 180.0


def demo(*args: str, timeout: float = LIMIT + 60) -> subprocess.CompletedProcess[str]:
    """The demo, stopped with SIGTERM (so that it stops its sandboxes) if it overruns ``timeout``."""
    command = [sys.executable, "-m", "chaos_service", "demo", *args]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
            raise AssertionError(f"the demo overran {timeout:g} s: {out[-2000:]}{err[-2000:]}") from None
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def sandbox_processes() -> set[tuple[int, str]]:
    """The processes a sandbox starts: private servers, the stub, the engine, the back-end."""
    marks = ("chaos-postgres-", "redis-server 127.0.0.1:", "chaos_service llm-stub", "chaos_service engine",
             "chaos_service sandbox-chat")  # fmt: skip
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode() if entry.name.isdigit() else ""
        except OSError:
            continue
        if any(mark in command for mark in marks):
            found.add((int(entry.name), command))
    return found


#: Two short built-in experiments (an LLM stream, the chat WebSocket). The whole library passing
#: on a healthy sandbox is what `make demo` itself checks (exit 0), in about 2 minutes.
SAMPLE = ("llm-rate-limit.yaml", "websocket-partition.yaml")


@pytest.mark.serial  # chat virtual users and timing checks: given the machine to themselves
@pytest.mark.timeout(LIMIT + 180)
def test_the_demo_runs_built_in_experiments_to_a_pass_and_reports_them(tmp_path: Path) -> None:
    report_dir = tmp_path / "report"
    before = sandbox_processes()
    started = time.monotonic()
    files = [str(BUILT_IN / name) for name in SAMPLE]
    result = demo(*files, "--report-dir", str(report_dir), "--lanes", "2")
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert elapsed < LIMIT, elapsed
    names = sorted(SAMPLE)
    out = result.stdout
    # progress while it runs (plain lines: this is not a terminal), then one summary row each
    assert re.search(rf"experiment \d+/{len(names)}: ", out)
    assert "probes ok (last 5 s)" in out
    rows = dict(re.findall(r"^(\S+\.yaml)\s+(\w+)\s+\d+ s", out, re.MULTILINE))
    assert rows == dict.fromkeys(names, "passed")
    assert f"report: {report_dir / 'report.html'}" in out
    # the report, the JUnit file and the journals agree
    page = (report_dir / "report.html").read_text()
    assert page.count("<svg") >= len(names) and "passed" in page
    journals = [json.loads(path.read_text()) for path in sorted((report_dir / "journals").glob("*.json"))]
    assert len(journals) == len(names) and {journal["status"] for journal in journals} == {"passed"}
    suites = ET.parse(report_dir / "junit.xml").getroot()
    assert int(suites.get("tests", "0")) == sum(len(journal["checks"]) for journal in journals)
    assert int(suites.get("failures", "0")) == 0
    # and nothing is left running
    assert "every fault removed, every sandbox stopped" in out
    assert sandbox_processes() - before == set()


def test_bad_demo_options_exit_2_before_anything_starts(tmp_path: Path) -> None:
    for args, message in (
        (["--lanes", "9"], "--lanes must be between 1 and 4, got 9"),
        (["--defect", "no_such_defect"], "unknown defect no_such_defect"),
        ([str(tmp_path / "missing.yaml")], "missing.yaml"),
    ):
        result = demo(*args, "--report-dir", str(tmp_path / "report"), timeout=60)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr
        assert not (tmp_path / "report").exists()


def test_sigterm_while_sandboxes_run_stops_the_demo_and_everything_it_started(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "chaos_service", "demo", "--report-dir", str(tmp_path / "r"), "--lanes", "1"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "fault " in line and " applied" in line:
                break
        started = child_pids(proc.pid)  # the sandbox's servers, stub, engine and back-end
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, out + err
    assert re.search(r"\S+\.yaml\s+aborted", out), out
    assert len(started) >= 5 and not [pid for pid in started if process_alive(pid)]

