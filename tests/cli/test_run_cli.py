"""``chaos-service run`` end to end, as a CI stage uses it: exit codes, outputs, and faults removed
whatever happens to the run."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chaos_service.sandbox.stack import Sandbox
from tests.support.sandbox import wait_until_healthy

SHORT = """
title: Redis slowed for a moment
settings: {{warmup: 1s, recovery_window: 2s, steady_window: 1s, ttl_margin: {margin}}}
probes:
  cache: {{type: redis, endpoint: redis, every: 100ms, deadline: 2s}}
steady_state:
  - {{probe: cache, success_rate: ">= 0.9"}}
method:
  - {{name: slow, at: 0s, fault: latency, proxy: redis, attributes: {{latency: 20}}, duration: {duration}}}
slo:
  success_rate: ">= 0.9"
rollbacks:
  - {{name: ask-health, method: GET, url: "${{env.endpoints.health}}"}}
"""


@pytest.fixture
def env_file(sandbox: Sandbox) -> Iterator[Path]:
    yield sandbox.environment_path
    wait_until_healthy(sandbox)


def experiment(tmp_path: Path, duration: str = "1s", margin: str = "30s") -> Path:
    path = tmp_path / "slow-redis.yaml"
    path.write_text(SHORT.format(duration=duration, margin=margin))
    return path


def chaos(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chaos_service", *args], capture_output=True, text=True, timeout=120)


def start_until_applied(path: Path, env_file: Path) -> subprocess.Popen[str]:
    """``chaos-service run`` in the background, returned once it reports its fault applied."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "chaos_service", "run", str(path), "--env", str(env_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "fault slow applied" in line:
            return proc
    raise AssertionError(f"the fault was never applied: {proc.communicate(timeout=30)}")


def redis_toxics(sandbox: Sandbox) -> list[str]:
    response = httpx.get(f"{sandbox.environment.engine}/proxies/redis/toxics", timeout=5)
    return [toxic["name"] for toxic in response.json()]


def redis_fired(sandbox: Sandbox) -> dict[str, int]:
    response = httpx.get(f"{sandbox.environment.engine}/proxies/redis/stats", timeout=5)
    return {name: entry["fired"] for name, entry in response.json()["toxics"].items()}


def test_a_passing_run_exits_0_and_writes_matching_journal_junit_and_html(
    tmp_path: Path, env_file: Path, sandbox: Sandbox
) -> None:
    journal, junit, html = tmp_path / "j.json", tmp_path / "j.xml", tmp_path / "r.html"
    fired_before = redis_fired(sandbox)
    result = chaos(
        "run", str(experiment(tmp_path)), "--env", str(env_file),
        "--journal", str(journal), "--junit", str(junit), "--html", str(html),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "fault slow applied" in result.stdout and "PASSED" in result.stdout
    record = json.loads(journal.read_text())
    assert record["status"] == "passed"
    # the evidence is every firing of the fault's toxics, as the engine counted them
    fired = {name: count - fired_before.get(name, 0) for name, count in redis_fired(sandbox).items()}
    evidence = ", ".join(f"{name}: fired {count}" for name, count in fired.items() if count)
    assert record["faults"][0]["evidence"] == evidence and evidence
    assert [(r["name"], r["status"]) for r in record["rollbacks"]] == [("ask-health", 200)]
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert int(suite.get("tests", "0")) == len(record["checks"])
    assert int(suite.get("failures", "0")) == sum(not check["passed"] for check in record["checks"]) == 0
    page = html.read_text()
    assert "<svg" in page and "passed" in page and "slow" in page
    assert redis_toxics(sandbox) == []


def test_sigterm_removes_the_faults_at_once_and_exits_3(tmp_path: Path, env_file: Path, sandbox: Sandbox) -> None:
    proc = start_until_applied(experiment(tmp_path, "60s"), env_file)
    assert redis_toxics(sandbox) != []
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 3, out + err
    assert "ABORTED: interrupted by SIGTERM" in out
    assert redis_toxics(sandbox) == []


def test_a_sigkilled_run_leaves_no_fault_once_the_ttl_passes(tmp_path: Path, env_file: Path, sandbox: Sandbox) -> None:
    proc = start_until_applied(experiment(tmp_path, "2s", "1s"), env_file)
    killed_at = time.monotonic()
    proc.kill()
    proc.communicate(timeout=10)
    assert redis_toxics(sandbox) != []  # nobody removed it…
    while redis_toxics(sandbox):  # …until the engine does, at the ttl (3 s); there is no event to await
        assert time.monotonic() - killed_at < 10, "the toxic outlived its ttl"
        time.sleep(0.1)


def test_a_dry_run_injects_nothing(tmp_path: Path, env_file: Path, sandbox: Sandbox) -> None:
    stats = f"{sandbox.environment.engine}/proxies/redis/stats"
    before = httpx.get(stats, timeout=5).json()["toxics"]  # cumulative: counts outlive their toxics
    result = chaos("run", "--dry-run", str(experiment(tmp_path)), "--env", str(env_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "applied" not in result.stdout and "dry run" in result.stdout
    assert httpx.get(stats, timeout=5).json()["toxics"] == before


def test_an_invalid_file_exits_2_naming_file_line_and_field(tmp_path: Path, env_file: Path) -> None:
    path = experiment(tmp_path).with_name("bad.yaml")
    path.write_text(SHORT.format(duration="soon", margin="30s"))
    result = chaos("run", str(path), "--env", str(env_file))
    assert result.returncode == 2
    assert f"{path}:9: method[0].duration:" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_environment_exits_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chaos_service", "run", str(experiment(tmp_path))],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "sandbox up" in result.stderr


def test_on_a_terminal_the_run_is_shown_live(tmp_path: Path, env_file: Path) -> None:
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "chaos_service", "run", str(experiment(tmp_path)), "--env", str(env_file)],
        stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary, env={**os.environ, "COLUMNS": "120"},
    )  # fmt: skip
    os.close(secondary)
    output = bytearray()
    with contextlib.suppress(OSError):  # EIO once the run's terminal is closed
        while chunk := os.read(primary, 65536):
            output += chunk
    os.close(primary)
    assert proc.wait(timeout=60) == 0
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output.decode())
    assert "1/1 slow-redis.yaml  method" in text  # the live panel, redrawn in place
    assert "faults: slow" in text and "probes ok, last 5 s: cache" in text and "s left" in text
    assert "\x1b[2K" in output.decode()  # lines erased for the redraw
    assert re.search(r"slow-redis\.yaml\s+passed", text)
