"""``chaos-service sandbox up | status | token | down`` as real commands, on free ports."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
from websockets.sync.client import connect

from chaos_service.sandbox.chat.config import DEFECTS
from chaos_service.sandbox.environment import Auth, Environment, Proxy
from chaos_service.sandbox.stack import FIXED_PORTS, port_is_free
from chaos_service.sandbox.supervisor import process_alive, running_pid, wait_for_exit

RUN_TIMEOUT = 60.0


def sandbox(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m chaos_service sandbox ARGS`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "chaos_service", "sandbox", *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_up_status_token_down(tmp_path: Path) -> None:
    directory = tmp_path / "sandbox"
    up = sandbox("up", "--dir", str(directory), "--ports", "auto", "--defect", "lose_events_on_resume")
    assert up.returncode == 0, up.stderr
    environment = Environment.load(directory / "environment.json")
    try:
        supervisor = environment.processes["supervisor"]
        assert running_pid(directory) == supervisor
        assert environment.defects == ["lose_events_on_resume"]
        assert f"environment: {directory / 'environment.json'}" in up.stdout
        for name, pid in environment.processes.items():
            assert process_alive(pid), name
            assert f"{name} " in up.stdout and str(pid) in up.stdout
        for proxy in environment.proxies.values():
            assert f"{proxy.listen}  {proxy.upstream}" in up.stdout

        again = sandbox("up", "--dir", str(directory), "--ports", "auto")
        assert again.returncode == 2
        assert f"a sandbox is already running in {directory} (pid {supervisor})" in again.stderr
        assert Environment.load(directory / "environment.json") == environment

        status = sandbox("status", "--dir", str(directory))
        assert status.returncode == 0, status.stdout + status.stderr
        for name, pid in environment.processes.items():
            assert any(line.split()[:3] == [name, str(pid), "running"] for line in status.stdout.splitlines())
        assert f"health: ok ({environment.endpoints['health']})" in status.stdout
        assert "defects: lose_events_on_resume" in status.stdout

        token = sandbox("token", "alice", "--ttl", "120", "--dir", str(directory))
        assert token.returncode == 0, token.stderr
        claims = jwt.decode(token.stdout.strip(), environment.auth.secret, algorithms=["HS256"])
        assert claims["sub"] == "alice"
        assert time.time() + 100 < claims["exp"] <= time.time() + 121
        with connect(f"{environment.endpoints['chat_ws']}?token={token.stdout.strip()}", open_timeout=10) as ws:
            ws.send(json.dumps({"type": "ping"}))
            assert json.loads(ws.recv(timeout=10)) == {"type": "pong"}
        bad_user = sandbox("token", "no spaces", "--dir", str(directory))
        assert bad_user.returncode == 2
        assert "invalid user 'no spaces'" in bad_user.stderr
    finally:
        down = sandbox("down", "--dir", str(directory))
    assert down.returncode == 0, down.stderr
    assert f"stopped the sandbox in {directory}" in down.stdout
    assert not (directory / "environment.json").exists()
    assert running_pid(directory) is None
    for name, pid in environment.processes.items():
        assert not process_alive(pid), f"{name} (pid {pid}) still runs"
    assert "chaos-service sandbox: stopped" in (directory / "sandbox.log").read_text()

    after = sandbox("status", "--dir", str(directory))
    assert after.returncode == 2
    assert f"no sandbox is running in {directory}: run `chaos-service sandbox up" in after.stderr


@pytest.mark.serial  # the fixed ports are shared by the whole machine
def test_up_with_a_fixed_port_taken_exits_2_and_leaves_nothing_running(tmp_path: Path) -> None:
    port = next(port for port, _ in FIXED_PORTS.values() if port_is_free(port))
    with socket.create_server(("127.0.0.1", port)):
        up = sandbox("up", "--dir", str(tmp_path))
    assert up.returncode == 2
    assert f"{port} (" in up.stderr and "in use on 127.0.0.1" in up.stderr and "--ports auto" in up.stderr
    assert "Traceback" not in up.stderr
    assert not (tmp_path / "environment.json").exists()
    assert running_pid(tmp_path) is None


def test_up_with_an_unknown_defect_exits_2_with_the_known_ones(tmp_path: Path) -> None:
    up = sandbox("up", "--dir", str(tmp_path / "sandbox"), "--ports", "auto", "--defect", "no_such_defect")
    assert up.returncode == 2
    assert f"unknown defect no_such_defect; known defects: {', '.join(DEFECTS)}" in up.stderr
    assert not (tmp_path / "sandbox").exists()


def test_up_without_a_redis_server_exits_2_with_advice(tmp_path: Path) -> None:
    up = sandbox("up", "--dir", str(tmp_path), "--ports", "auto", env={"CHAOS_REDIS_SERVER": str(tmp_path / "none")})
    assert up.returncode == 2
    assert "redis-server not found" in up.stderr and "install it" in up.stderr
    assert "Traceback" not in up.stderr
    assert running_pid(tmp_path) is None


@pytest.mark.parametrize(
    "args",
    [["up", "--ports", "some"], ["up", "--postgres-url", "mysql://db"], ["token", "alice", "--ttl", "0"]],
    ids=["ports", "postgres-url", "ttl"],
)
def test_bad_flags_exit_2(tmp_path: Path, args: list[str]) -> None:
    result = sandbox(*args, "--dir", str(tmp_path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_down_with_nothing_running(tmp_path: Path) -> None:
    down = sandbox("down", "--dir", str(tmp_path))
    assert down.returncode == 0
    assert down.stdout == f"chaos-service sandbox: no sandbox is running in {tmp_path}\n"


def test_token_without_a_sandbox_exits_2(tmp_path: Path) -> None:
    token = sandbox("token", "alice", "--dir", str(tmp_path))
    assert token.returncode == 2
    assert token.stderr == (
        f"chaos-service sandbox: no sandbox is running in {tmp_path}: run `chaos-service sandbox up --dir {tmp_path}`\n"
    )


def test_down_clears_a_stale_environment(tmp_path: Path) -> None:
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()
    stale = Environment(
        engine="http://127.0.0.1:1",
        proxies={"redis": Proxy("tcp", "127.0.0.1:2", "127.0.0.1:3")},
        endpoints={"health": "http://127.0.0.1:1/health"},
        direct={},
        auth=Auth(secret="x" * 32),
        processes={"supervisor": exited.pid, "engine": exited.pid},
    )
    stale.write(tmp_path / "environment.json")
    status = sandbox("status", "--dir", str(tmp_path))
    assert status.returncode == 1
    assert "NOT RUNNING" in status.stdout and "health: no answer" in status.stdout
    down = sandbox("down", "--dir", str(tmp_path))
    assert down.returncode == 0, down.stderr
    assert not (tmp_path / "environment.json").exists()


def test_after_the_supervisor_was_killed_nothing_is_left_and_down_clears_up(tmp_path: Path) -> None:
    up = sandbox("up", "--dir", str(tmp_path), "--ports", "auto")
    assert up.returncode == 0, up.stderr
    processes = Environment.load(tmp_path / "environment.json").processes
    cwds = [Path(os.readlink(f"/proc/{processes[name]}/cwd")) for name in ("postgres", "redis")]
    data_dirs = [next(d for d in (cwd, *cwd.parents) if d.name.startswith("chaos-")) for cwd in cwds]
    os.kill(processes["supervisor"], signal.SIGKILL)
    assert wait_for_exit(processes["supervisor"], 10)
    # The reaper stops the processes; `down`, run at once, stops whatever it has not yet stopped.
    down = sandbox("down", "--dir", str(tmp_path))
    assert down.returncode == 0, down.stderr
    for name, pid in processes.items():
        assert not process_alive(pid), f"{name} (pid {pid}) still runs"
    deadline = time.monotonic() + 10  # the reaper may still be removing what it found first
    while any(directory.exists() for directory in data_dirs):
        assert time.monotonic() < deadline, data_dirs
        time.sleep(0.05)
    assert not (tmp_path / "environment.json").exists()

