"""One Chaos Toolkit experiment file, run by the real ``chaos`` CLI and by ``chaos-service run``.

The real CLI (chaostoolkit with chaostoolkit-toxiproxy) passes against the engine; the same
file through ``chaos-service run`` passes too, writes a Chaos Toolkit journal, and gives this
service's verdicts where Chaos Toolkit's mislead — unless ``--ctk-compat`` asks for Chaos
Toolkit's own status and exit code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.engine import EchoServer, EngineProcess

CHAOS = shutil.which("chaos", path=str(Path(sys.executable).parent))
TIMEOUT = 120


def experiment(engine_url: str, **changes: Any) -> dict[str, Any]:
    """A latency experiment on proxy ``echo``: steady state, a toxic, a rollback."""
    url = urlsplit(engine_url)
    document: dict[str, Any] = {
        "version": "1.0.0",
        "title": "Echo answers through 200 ms of latency",
        "description": "Latency on the echo proxy; the engine keeps answering and the proxy stays.",
        "tags": ["latency"],
        "configuration": {
            "toxiproxy_host": url.hostname,
            "toxiproxy_port": url.port,
            "engine_url": engine_url,
            "api_key": {"type": "env", "key": "CTK_TEST_API_KEY"},
        },
        "steady-state-hypothesis": {
            "title": "the proxy exists and the engine answers",
            "probes": [
                {
                    "type": "probe",
                    "name": "proxy-exists",
                    "tolerance": True,
                    "provider": {
                        "type": "python",
                        "module": "chaostoxi.proxy.probes",
                        "func": "proxy_exist",
                        "arguments": {"proxy_name": "echo"},
                    },
                },
                {
                    "type": "probe",
                    "name": "engine-answers",
                    "tolerance": 200,
                    "provider": {"type": "http", "url": "${engine_url}/version", "headers": {"X-Key": "${api_key}"}},
                },
            ],
        },
        "method": [
            {
                "type": "action",
                "name": "add-latency",
                "provider": {
                    "type": "python",
                    "module": "chaostoxi.toxic.actions",
                    "func": "create_latency_toxic",
                    "arguments": {"for_proxy": "echo", "toxic_name": "slow", "latency": 200},
                },
            },
            {
                "type": "probe",
                "name": "toxics-listed",
                "provider": {"type": "http", "url": "${engine_url}/proxies/echo/toxics"},
            },
        ],
        "rollbacks": [
            {
                "type": "action",
                "name": "remove-latency",
                "provider": {
                    "type": "python",
                    "module": "chaostoxi.toxic.actions",
                    "func": "delete_toxic",
                    "arguments": {"for_proxy": "echo", "toxic_name": "slow"},
                },
            }
        ],
    }
    document.update(changes)
    return document


def write(tmp_path: Path, document: dict[str, Any], name: str = "experiment.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document, indent=2))
    return path


def environment() -> dict[str, str]:
    return {**os.environ, "CTK_TEST_API_KEY": "s3cret-key-123"}


def chaos_toolkit(path: Path, journal: Path) -> subprocess.CompletedProcess[str]:
    assert CHAOS is not None, "the chaostoolkit CLI is a test dependency"
    command = [CHAOS, "--no-version-check", "--no-log-file", "run", str(path), "--journal-path", str(journal)]
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=environment(), cwd=path.parent)


def chaos_service(path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "chaos_service", "run", str(path), *options]
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=environment(), cwd=path.parent)


@pytest.fixture
def echo_proxy(api: httpx.Client, echo_server: EchoServer) -> str:
    created = api.post("/proxies", json={"name": "echo", "listen": "127.0.0.1:0", "upstream": echo_server.address})
    assert created.status_code == 201, created.text
    return "echo"


def toxics(api: httpx.Client) -> list[str]:
    return [toxic["name"] for toxic in api.get("/proxies/echo/toxics").json()]


def test_the_real_chaostoolkit_cli_passes_against_the_engine(
    engine: EngineProcess, api: httpx.Client, echo_proxy: str, tmp_path: Path
) -> None:
    journal_path = tmp_path / "journal.json"
    ran = chaos_toolkit(write(tmp_path, experiment(engine.url)), journal_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    journal = json.loads(journal_path.read_text())
    assert (journal["status"], journal["deviated"]) == ("completed", False)
    assert [entry["status"] for entry in journal["run"]] == ["succeeded", "succeeded"]
    assert journal["run"][1]["output"]["body"][0]["name"] == "slow"  # the toxic was there during the method
    assert toxics(api) == []  # the rollback removed it


def test_the_same_file_passes_through_chaos_service_with_a_chaos_toolkit_journal(
    engine: EngineProcess, api: httpx.Client, echo_proxy: str, tmp_path: Path
) -> None:
    path = write(tmp_path, experiment(engine.url))
    ran = chaos_service(path, "--journal", "journal.json", "--junit", "junit.xml")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    journal = json.loads((tmp_path / "journal.json").read_text())
    assert (journal["status"], journal["deviated"]) == ("completed", False)
    assert journal["chaos-service"]["outcome"] == "passed"
    assert [p["tolerance_met"] for p in journal["steady_states"]["before"]["probes"]] == [True, True]
    assert [p["tolerance_met"] for p in journal["steady_states"]["after"]["probes"]] == [True, True]
    toxic = journal["run"][1]["output"]["body"][0]
    assert (toxic["name"], toxic["ttl"] is not None) == ("slow", True)  # bounded, unlike Chaos Toolkit's
    assert [entry["status"] for entry in journal["rollbacks"]] == ["succeeded"]
    assert "s3cret-key-123" not in (tmp_path / "journal.json").read_text()  # secrets and env values masked
    junit = (tmp_path / "junit.xml").read_text()
    assert 'failures="0"' in junit and "proxy-exists" in junit
    assert toxics(api) == []


def test_a_steady_state_that_fails_before_the_method_is_not_a_pass(
    engine: EngineProcess, api: httpx.Client, echo_proxy: str, tmp_path: Path
) -> None:
    document = experiment(engine.url)
    document["steady-state-hypothesis"]["probes"][0]["provider"]["arguments"]["proxy_name"] = "missing"
    path = write(tmp_path, document)
    ctk = chaos_toolkit(path, tmp_path / "ctk.json")
    assert ctk.returncode == 0, ctk.stdout + ctk.stderr  # Chaos Toolkit: "completed", exit 0
    assert json.loads((tmp_path / "ctk.json").read_text())["status"] == "completed"
    ours = chaos_service(path, "--journal", "ours.json")
    assert ours.returncode == 4, ours.stdout + ours.stderr  # precondition_failed
    assert "steady state did not hold before the method" in ours.stdout
    assert json.loads((tmp_path / "ours.json").read_text())["run"] == []  # the method never ran
    compat = chaos_service(path, "--ctk-compat", "--journal", "compat.json")
    assert compat.returncode == 0, compat.stdout + compat.stderr
    assert json.loads((tmp_path / "compat.json").read_text())["status"] == "completed"


def test_a_failed_action_is_an_error_and_a_deviation_after_the_method_fails_the_run(
    engine: EngineProcess, api: httpx.Client, echo_proxy: str, tmp_path: Path
) -> None:
    broken = experiment(engine.url)
    broken["method"][0]["provider"]["arguments"]["for_proxy"] = "missing"
    broken["rollbacks"] = []
    path = write(tmp_path, broken, "broken.json")
    assert chaos_toolkit(path, tmp_path / "ctk.json").returncode == 0  # Chaos Toolkit does not notice
    ours = chaos_service(path)
    assert ours.returncode == 5, ours.stdout + ours.stderr
    assert "action 'add-latency' failed, so nothing was tested" in ours.stdout
    assert chaos_service(path, "--ctk-compat").returncode == 0

    marker = tmp_path / "marker"
    deviating = experiment(
        engine.url,
        method=[
            {
                "type": "action",
                "name": "remove-marker",
                "provider": {"type": "process", "path": "rm", "arguments": ["-f", str(marker)]},
            }
        ],
        rollbacks=[],
    )
    deviating["steady-state-hypothesis"]["probes"].append(
        {
            "type": "probe",
            "name": "marker-present",
            "tolerance": 0,
            "provider": {"type": "process", "path": "test", "arguments": ["-f", str(marker)]},
        }
    )
    path = write(tmp_path, deviating, "deviating.json")
    marker.touch()
    ours = chaos_service(path, "--journal", "dev.json")
    assert ours.returncode == 1, ours.stdout + ours.stderr
    journal = json.loads((tmp_path / "dev.json").read_text())
    assert (journal["status"], journal["deviated"], journal["chaos-service"]["outcome"]) == (
        "completed",
        True,
        "failed",
    )
    marker.touch()
    ctk = chaos_toolkit(path, tmp_path / "ctk-dev.json")
    assert ctk.returncode == 1 and json.loads((tmp_path / "ctk-dev.json").read_text())["deviated"] is True


def test_what_the_file_forgot_to_roll_back_is_put_back_anyway(
    engine: EngineProcess, api: httpx.Client, echo_proxy: str, tmp_path: Path
) -> None:
    path = write(tmp_path, experiment(engine.url, rollbacks=[]))
    ran = chaos_service(path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "restored:" in ran.stdout
    assert toxics(api) == []


def test_an_invalid_chaos_toolkit_file_exits_2_listing_every_problem_and_runs_nothing(
    engine: EngineProcess, api: httpx.Client, echo_proxy: str, tmp_path: Path
) -> None:
    document = experiment(engine.url, description="")
    document["method"][0]["provider"]["func"] = "no_such_function"
    document["steady-state-hypothesis"]["probes"][1]["tolerance"] = {"type": "regex", "pattern": "("}
    document["rollbacks"].append({"ref": "nothing-by-that-name"})
    ran = chaos_service(write(tmp_path, document))
    assert ran.returncode == 2, ran.stdout + ran.stderr
    for expected in ["description", "no_such_function", "tolerance", "nothing-by-that-name"]:
        assert expected in ran.stderr, expected
    assert "Traceback" not in ran.stderr
    assert toxics(api) == []


def test_validate_checks_chaos_toolkit_files_by_their_own_rules(engine: EngineProcess, tmp_path: Path) -> None:
    good = write(tmp_path, experiment(engine.url), "good.json")
    bad = write(tmp_path, experiment(engine.url, method="not a list"), "bad.json")
    command = [sys.executable, "-m", "chaos_service", "validate"]
    ok = subprocess.run([*command, str(good)], capture_output=True, text=True, timeout=TIMEOUT)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"ok  {good}  Echo answers through 200 ms of latency (Chaos Toolkit)")
    refused = subprocess.run([*command, str(good), str(bad)], capture_output=True, text=True, timeout=TIMEOUT)
    assert refused.returncode == 2
    assert "method: required, a list of activities" in refused.stderr and "1 of 2 files are invalid" in refused.stderr
