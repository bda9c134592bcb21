"""The Docker driver against a fake Docker Engine API on a unix socket: calls, restores, the watchdog, errors."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaos_service.experiments.faults import (
    AppliedFault,
    EngineFaultDriver,
    FaultDriver,
    FaultError,
    FaultTargetError,
    LocalProcessDriver,
    driver_for,
    drivers_for,
)
from chaos_service.experiments.faults.docker import DockerDriver
from chaos_service.sandbox.environment import Container, Environment
from tests.experiments.faults.support import await_exit, environment, fault, live_restore_watchdogs, run
from tests.support.docker_engine import API_VERSION, Call, FakeDockerEngine

ROOT = Path(__file__).resolve().parents[3]
CONTAINERS = {
    "redis": Container(name="chaos-redis-1"),
    "workers": Container(label="app=worker"),
    "old": Container(name="chaos-old-1"),
    "ghost": Container(name="chaos-ghost-1"),
    "nobody": Container(label="app=none"),
}
REDIS = "01" * 32  # the ids the fake engine gives, in the order of `engine` below
WORKER_1, WORKER_2, OLD = "02" * 32, "03" * 32, "04" * 32


def _environment(docker_url: str, processes: dict[str, int] | None = None) -> Environment:
    base = environment("http://127.0.0.1:9", processes=processes)
    return dataclasses.replace(base, docker=docker_url, containers=dict(CONTAINERS))


@pytest.fixture
def engine() -> Iterator[FakeDockerEngine]:
    engine = FakeDockerEngine()
    engine.add("chaos-redis-1", labels={"com.docker.compose.service": "redis"})
    engine.add("chaos-worker-1", labels={"app": "worker"})
    engine.add("chaos-worker-2", labels={"app": "worker"})
    engine.add("chaos-old-1", status="exited")
    yield engine
    engine.close()


@pytest.fixture
def driver(engine: FakeDockerEngine) -> Iterator[DockerDriver]:
    driver = DockerDriver(_environment(engine.url))
    yield driver
    for pid in live_restore_watchdogs():  # a failed test's: stood down, never left to fire later
        run(driver._watchdogs.stand_down({"watchdog_pid": pid}))


def _statuses(engine: FakeDockerEngine) -> dict[str, str]:
    with engine.lock:
        return {c.name: c.status for c in engine.containers.values()}


# -- each fault type: apply, verify, remove --------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "attributes", "action", "evidence", "restore"),
    [
        pytest.param("pause", {}, "pause", "paused", ["unpause"], id="pause"),
        pytest.param("kill", {}, "kill signal=SIGKILL", "exited (code 137)", ["start"], id="kill"),
        pytest.param("kill", {"signal": "term"}, "kill signal=SIGTERM", "exited (code 143)", ["start"], id="kill-term"),
        pytest.param("stop", {"timeout": 3}, "stop t=3", "exited (code 0)", ["start"], id="stop"),
        pytest.param("restart", {}, "restart t=10", "restarted", [], id="restart"),
    ],
)
def test_each_fault_on_a_container_by_name(
    engine: FakeDockerEngine,
    driver: DockerDriver,
    kind: str,
    attributes: dict[str, Any],
    action: str,
    evidence: str,
    restore: list[str],
) -> None:
    plan = fault(kind, "redis", attributes=attributes)
    assert driver.handles(plan)
    run(driver.check(plan))
    assert engine.lines() == ["GET /version", "GET /containers/chaos-redis-1/json"]

    started_at = engine.get("chaos-redis-1").started_at
    applied = run(driver.apply(plan, ttl=30))
    assert (applied.driver, applied.kind, applied.target, applied.ttl) == ("docker", kind, "redis", 30)
    assert applied.handle["action"] == kind
    assert applied.handle["containers"] == [{"id": REDIS, "name": "chaos-redis-1", "started_at": started_at}]
    assert applied.handle["docker"] == engine.url
    assert live_restore_watchdogs() == [applied.handle["watchdog_pid"]]
    assert run(driver.verify(applied)) == f"container chaos-redis-1 {evidence}"
    run(driver.remove(applied))
    assert live_restore_watchdogs() == []
    assert engine.lines(2) == [
        "GET /containers/chaos-redis-1/json",  # apply
        f"POST /containers/{REDIS}/{action}",
        f"GET /containers/{REDIS}/json",  # verify
        f"GET /containers/{REDIS}/json",  # remove
        *[f"POST /containers/{REDIS}/{undo}" for undo in restore],
    ]
    assert _statuses(engine)["chaos-redis-1"] == "running"
    # The API version is negotiated once, then every call names it.
    assert [call.version for call in engine.calls] == ["", *[API_VERSION] * (len(engine.calls) - 1)]

    mark = len(engine.calls)
    run(driver.remove(applied))  # twice: fine, and nothing more to do
    assert engine.lines(mark) == [f"GET /containers/{REDIS}/json"]


def test_a_label_selects_every_container_carrying_it(engine: FakeDockerEngine, driver: DockerDriver) -> None:
    applied = run(driver.apply(fault("pause", "workers"), ttl=30))
    assert [c["name"] for c in applied.handle["containers"]] == ["chaos-worker-1", "chaos-worker-2"]
    assert _statuses(engine) | {"chaos-redis-1": "-", "chaos-old-1": "-"} == {
        "chaos-redis-1": "-",
        "chaos-worker-1": "paused",
        "chaos-worker-2": "paused",
        "chaos-old-1": "-",
    }
    assert run(driver.verify(applied)) == "container chaos-worker-1 paused; container chaos-worker-2 paused"
    run(driver.remove(applied))
    assert engine.lines() == [
        "GET /version",
        'GET /containers/json all=1 filters={"label": ["app=worker"]}',
        f"GET /containers/{WORKER_1}/json",
        f"GET /containers/{WORKER_2}/json",
        f"POST /containers/{WORKER_1}/pause",
        f"POST /containers/{WORKER_2}/pause",
        f"GET /containers/{WORKER_1}/json",  # verify
        f"GET /containers/{WORKER_2}/json",
        f"GET /containers/{WORKER_1}/json",  # remove
        f"POST /containers/{WORKER_1}/unpause",
        f"GET /containers/{WORKER_2}/json",
        f"POST /containers/{WORKER_2}/unpause",
    ]
    assert set(_statuses(engine).values()) == {"running", "exited"}  # chaos-old-1 was never touched
    assert live_restore_watchdogs() == []


# -- restoring -------------------------------------------------------------------------------------


def test_a_failure_on_one_container_restores_the_others_and_stands_the_watchdog_down(
    engine: FakeDockerEngine, driver: DockerDriver
) -> None:
    engine.fail("pause", "chaos-worker-2")
    with pytest.raises(FaultError) as caught:
        run(driver.apply(fault("pause", "workers"), ttl=30))
    assert str(caught.value) == (
        f"fault 'f1': pausing container chaos-worker-2 failed (the Docker API at {engine.url} answered 500: "
        "injected failure: pause chaos-worker-2); chaos-worker-1 restored, nothing left changed"
    )
    assert engine.lines(4) == [
        f"POST /containers/{WORKER_1}/pause",
        f"POST /containers/{WORKER_2}/pause",  # 500
        f"GET /containers/{WORKER_1}/json",
        f"POST /containers/{WORKER_1}/unpause",
        f"GET /containers/{WORKER_2}/json",  # running: nothing to undo
    ]
    assert "paused" not in _statuses(engine).values()
    assert live_restore_watchdogs() == []


def test_a_failure_on_a_single_container_leaves_nothing_changed(engine: FakeDockerEngine, driver: DockerDriver) -> None:
    engine.fail("kill", "chaos-redis-1")
    with pytest.raises(FaultError, match=r"killing container chaos-redis-1 failed \(.*\); nothing left changed$"):
        run(driver.apply(fault("kill", "redis"), ttl=30))
    assert engine.lines(2) == [
        f"POST /containers/{REDIS}/kill signal=SIGKILL",  # 500
        f"GET /containers/{REDIS}/json",  # running: nothing to start
    ]
    assert live_restore_watchdogs() == []


def test_when_restoring_fails_too_the_watchdog_is_left_to_do_it(engine: FakeDockerEngine, driver: DockerDriver) -> None:
    engine.fail("pause", "chaos-worker-2")
    engine.fail("unpause", "chaos-worker-1")
    with pytest.raises(FaultError, match=r"unpausing container chaos-worker-1 failed .*: the watchdog restores them"):
        run(driver.apply(fault("pause", "workers"), ttl=30))
    assert len(live_restore_watchdogs()) == 1  # stood down by the fixture


def test_remove_restores_after_a_failure_only_on_a_later_call(engine: FakeDockerEngine, driver: DockerDriver) -> None:
    applied = run(driver.apply(fault("pause", "redis"), ttl=30))
    engine.fail("unpause", "chaos-redis-1")
    with pytest.raises(FaultError) as caught:
        run(driver.remove(applied))
    assert str(caught.value) == (
        f"fault 'f1': unpausing container chaos-redis-1 failed (the Docker API at {engine.url} answered 500: "
        "injected failure: unpause chaos-redis-1); its watchdog still restores chaos-redis-1 when the ttl (30 s) is up"
    )
    assert live_restore_watchdogs() == [applied.handle["watchdog_pid"]]
    with engine.lock:
        engine.failures.clear()
    run(driver.remove(applied))
    assert _statuses(engine)["chaos-redis-1"] == "running"
    assert live_restore_watchdogs() == []


def test_remove_leaves_alone_a_container_its_restart_policy_brought_back(
    engine: FakeDockerEngine, driver: DockerDriver
) -> None:
    applied = run(driver.apply(fault("kill", "redis"), ttl=30))
    engine.restart_by_policy("chaos-redis-1")
    started_again = engine.get("chaos-redis-1").started_at
    assert run(driver.verify(applied)) == "container chaos-redis-1 exited and was started again"
    mark = len(engine.calls)
    run(driver.remove(applied))
    assert engine.lines(mark) == [f"GET /containers/{REDIS}/json"]  # no start: it runs
    assert engine.get("chaos-redis-1").started_at == started_again
    assert live_restore_watchdogs() == []


def test_a_container_removed_meanwhile_is_fine(engine: FakeDockerEngine, driver: DockerDriver) -> None:
    applied = run(driver.apply(fault("stop", "redis"), ttl=30))
    engine.remove_container("chaos-redis-1")
    assert run(driver.verify(applied)) == "container chaos-redis-1 is gone"
    run(driver.remove(applied))
    assert engine.lines(len(engine.calls) - 1) == [f"GET /containers/{REDIS}/json"]  # 404: nothing to start
    assert live_restore_watchdogs() == []


def test_the_watchdog_unpauses_the_container_when_the_runner_dies(engine: FakeDockerEngine) -> None:
    ttl = 1.0
    runner_code = (
        "import asyncio, dataclasses, json, sys\n"
        "from chaos_service.experiments.faults.docker import DockerDriver\n"
        "from chaos_service.sandbox.environment import Container\n"
        "from tests.experiments.faults.support import environment, fault\n"
        "env = dataclasses.replace(environment('http://127.0.0.1:9'), docker=sys.argv[1],\n"
        "                          containers={'redis': Container(name='chaos-redis-1')})\n"
        "applied = asyncio.run(DockerDriver(env).apply(fault('pause', 'redis'), ttl=float(sys.argv[2])))\n"
        "print(json.dumps({'handle': applied.handle, 'expires_at': applied.expires_at}), flush=True)\n"
        "sys.stdin.read()\n"
    )
    runner = subprocess.Popen(
        [sys.executable, "-c", runner_code, engine.url, str(ttl)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    assert runner.stdout is not None and runner.stdin is not None
    printed = json.loads(runner.stdout.readline() or "null")
    runner.kill()  # SIGKILL: the runner never removes its fault
    runner.wait()
    runner.stdout.close()
    runner.stdin.close()
    assert printed is not None, "the runner did not apply the fault"
    handle = printed["handle"]
    try:
        assert engine.get("chaos-redis-1").status == "paused"

        def unpaused(calls: list[Call]) -> bool:
            return any(call.method == "POST" and call.path == f"/containers/{REDIS}/unpause" for call in calls)

        assert engine.wait_for(unpaused, timeout=15), "the watchdog did not unpause the container"
        unpause = next(call for call in engine.calls if call.path.endswith("/unpause"))
        assert unpause.at >= printed["expires_at"]  # not before the deadline (CLOCK_MONOTONIC is machine-wide)
        assert engine.get("chaos-redis-1").status == "running"
        await_exit(handle["watchdog_pid"])  # its job done, the watchdog exits
    finally:
        if handle["watchdog_pid"] in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
            os.kill(handle["watchdog_pid"], signal.SIGTERM)


# -- refusals --------------------------------------------------------------------------------------


def test_bad_targets_and_attributes_are_refused_with_nothing_changed(
    engine: FakeDockerEngine, driver: DockerDriver
) -> None:
    engine.set_status("chaos-worker-2", "paused")
    refused: list[tuple[str, str, dict[str, Any], str]] = [
        ("pause", "db", {}, r"unknown container 'db' \(the environment's containers: ghost, nobody, old, redis, work"),
        ("restart", "db", {}, r"unknown container 'db'"),
        ("kill", "ghost", {}, r"no container named 'chaos-ghost-1' \('ghost'\) at the Docker API unix://"),
        ("stop", "nobody", {}, r"no container with label 'app=none' \('nobody'\)"),
        ("kill", "old", {}, r"container chaos-old-1 is not running \(exited\)"),
        ("pause", "workers", {}, r"container chaos-worker-2 is already paused"),
        ("restart", "workers", {}, r"container chaos-worker-2 is not running \(paused\)"),
        ("pause", "redis", {"signal": "HUP"}, r"unknown attribute 'signal' for pause \(pause takes none\)"),
        (
            "kill",
            "redis",
            {"signal": "SIGBOGUS"},
            r"signal must be a signal name like SIGTERM or a number from 1 to 64",
        ),
        ("kill", "redis", {"signal": 0}, r"signal must be .*, not 0"),
        ("stop", "redis", {"timeout": -1}, r"timeout must be a whole number of seconds, 0 or more, not -1"),
        ("restart", "redis", {"timeout": "10s"}, r"timeout must be a whole number of seconds, 0 or more, not '10s'"),
        ("restart", "redis", {"grace": 3}, r"unknown attribute 'grace' for restart \(valid: timeout\)"),
        ("latency", "redis", {}, r"'latency' is not a container fault \(use kill, pause, restart, stop\)"),
    ]
    for kind, target, attributes, message in refused:
        plan = fault(kind, target, attributes=attributes)
        for attempt in (driver.check(plan), driver.apply(plan, ttl=30)):
            with pytest.raises(FaultTargetError, match=f"^fault 'f1': {message}"):
                run(attempt)
    assert {call.method for call in engine.calls} == {"GET"}
    assert _statuses(engine) == {
        "chaos-redis-1": "running",
        "chaos-worker-1": "running",
        "chaos-worker-2": "paused",
        "chaos-old-1": "exited",
    }
    assert live_restore_watchdogs() == []
    with pytest.raises(FaultError, match="ttl must be greater than 0"):
        run(driver.apply(fault("pause", "redis"), ttl=0))


def test_an_unreachable_docker_api_is_a_clear_error() -> None:
    with tempfile.TemporaryDirectory(prefix="no-docker-") as directory:
        missing = f"unix://{directory}/docker.sock"
        refusing = Path(directory) / "refusing.sock"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as bound:  # bound, never listening
            bound.bind(str(refusing))
            for url, reason in ((missing, "No such file or directory"), (f"unix://{refusing}", "Connection refused")):
                driver = DockerDriver(_environment(url))
                for attempt in (driver.check(fault("pause", "redis")), driver.apply(fault("stop", "redis"), ttl=30)):
                    with pytest.raises(
                        FaultTargetError, match=f"^fault 'f1': cannot reach the Docker API at {url}: .*{reason}"
                    ):
                        run(attempt)
                applied = AppliedFault(
                    name="f1",
                    driver="docker",
                    handle={
                        "action": "pause",
                        "containers": [{"id": REDIS, "name": "chaos-redis-1", "started_at": ""}],
                    },
                    applied_at=0.0,
                    expires_at=30.0,
                    ttl=30.0,
                )
                assert run(driver.verify(applied)) is None
                with pytest.raises(FaultError, match=f"{reason}; its watchdog still restores chaos-redis-1 when"):
                    run(driver.remove(applied))
    ssh = DockerDriver(_environment("ssh://docker@build-host"))
    with pytest.raises(FaultTargetError, match="the Docker API URL 'ssh://docker@build-host' is not unix://"):
        run(ssh.check(fault("pause", "redis")))
    assert live_restore_watchdogs() == []


# -- choosing the driver ---------------------------------------------------------------------------


def test_a_process_fault_naming_a_container_goes_to_the_docker_driver(engine: FakeDockerEngine) -> None:
    drivers = drivers_for(_environment(engine.url, processes={"worker": os.getpid()}))
    assert all(isinstance(driver, FaultDriver) for driver in drivers)
    docker_driver = driver_for(fault("pause", "redis"), drivers)
    assert isinstance(docker_driver, DockerDriver)
    assert docker_driver.url == engine.url
    for kind in ("kill", "stop", "restart"):
        assert driver_for(fault(kind, "workers"), drivers) is docker_driver
    assert isinstance(driver_for(fault("pause", "worker"), drivers), LocalProcessDriver)
    assert isinstance(driver_for(fault("latency", "redis"), drivers), EngineFaultDriver)
    assert driver_for(fault("restart", "worker"), drivers) is docker_driver  # containers only: refused by check
    with pytest.raises(FaultTargetError, match="unknown container 'worker'"):
        run(docker_driver.check(fault("restart", "worker")))
    run(docker_driver.check(fault("pause", "redis")))
    assert engine.lines() == ["GET /version", "GET /containers/chaos-redis-1/json"]
