"""The sandbox stack, started for real: its environment files, its proxies and its endpoints."""

from __future__ import annotations

import dataclasses
import json
import socket
from pathlib import Path

import httpx
import pytest
import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from chaos_service.sandbox.chat.auth import issue_token
from chaos_service.sandbox.datastores import DatastoreUnavailable
from chaos_service.sandbox.environment import Environment
from chaos_service.sandbox.stack import (
    FIXED_PORTS,
    PortMode,
    Ports,
    PortTaken,
    Sandbox,
    UnknownDefect,
    port_is_free,
)
from chaos_service.sandbox.supervisor import AlreadyRunning, process_alive, running_pid
from chaos_service.service_process import ServiceStartFailed
from tests.support.datastores import pg_fetch
from tests.support.sandbox import child_pids

PROCESSES = ["supervisor", "postgres", "redis", "llm_stub", "engine", "chat"]



def test_environment_json_says_where_everything_runs(sandbox: Sandbox) -> None:
    environment = Environment.load(sandbox.directory / "environment.json")
    assert environment == sandbox.environment
    assert set(environment.proxies) == {"postgres", "redis", "llm", "chat_ws"}
    assert {name: p.protocol for name, p in environment.proxies.items()} == {
        "postgres": "tcp",
        "redis": "tcp",
        "llm": "http",
        "chat_ws": "websocket",
    }
    proxies = environment.proxies
    assert environment.endpoints["chat_ws"] == f"ws://{proxies['chat_ws'].listen}/ws"
    assert environment.endpoints["llm"] == f"http://{proxies['llm'].listen}/v1"
    assert environment.endpoints["postgres"] == f"postgresql://postgres@{proxies['postgres'].listen}/postgres"
    assert environment.endpoints["redis"] == f"redis://{proxies['redis'].listen}/0"
    assert environment.direct["chat_ws"] == f"ws://{proxies['chat_ws'].upstream}/ws"
    assert environment.endpoints["health"] == f"http://{proxies['chat_ws'].upstream}/health"
    assert environment.direct["llm"] == f"http://{proxies['llm'].upstream}/v1"
    assert environment.auth.algorithm == "HS256"
    assert len(environment.auth.secret) >= 32
    assert environment.defects == []
    for name in PROCESSES:
        if name in ("postgres", "redis") and name not in environment.processes:
            continue  # an external server
        assert process_alive(environment.processes[name]), name
    assert running_pid(sandbox.directory) == environment.processes["supervisor"]


def test_the_engine_runs_the_four_proxies(sandbox: Sandbox) -> None:
    environment = sandbox.environment
    proxies = httpx.get(f"{environment.engine}/proxies", timeout=10).json()
    assert set(proxies) == set(environment.proxies)
    for name, expected in environment.proxies.items():
        proxy = proxies[name]
        assert (proxy["protocol"], proxy["listen"], proxy["upstream"], proxy["enabled"]) == (
            expected.protocol,
            expected.listen,
            expected.upstream,
            True,
        )
    config = json.loads((sandbox.directory / "proxies.json").read_text())
    assert {p["name"]: (p["protocol"], p["listen"], p["upstream"]) for p in config} == {
        name: (p.protocol, p.listen, p.upstream) for name, p in environment.proxies.items()
    }


def test_the_datastores_and_the_llm_answer_through_the_proxies(sandbox: Sandbox) -> None:
    endpoints = sandbox.environment.endpoints
    assert pg_fetch(endpoints["postgres"], "SELECT 6 * 7") == 42
    with redis.Redis.from_url(endpoints["redis"], socket_timeout=5) as client:
        assert client.ping() is True
    models = httpx.get(f"{endpoints['llm']}/models", timeout=10)
    assert models.status_code == 200
    assert models.json()["object"] == "list"


def test_the_chat_back_end_is_healthy(sandbox: Sandbox) -> None:
    response = httpx.get(sandbox.environment.endpoints["health"], timeout=10)
    assert response.status_code == 200
    report = response.json()
    assert report["status"] == "ok"
    assert {name: check["status"] for name, check in report["dependencies"].items()} == {
        "postgres": "ok",
        "redis": "ok",
        "llm": "ok",
    }


def test_the_chat_back_end_answers_through_the_websocket_proxy(sandbox: Sandbox) -> None:
    environment = sandbox.environment
    token = issue_token(environment.auth.secret, "alice", 60)
    with connect(f"{environment.endpoints['chat_ws']}?token={token}", open_timeout=10) as ws:
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "pong"}
    forged = issue_token("another-secret-that-is-long-enough-for-hs256", "alice", 60)
    with (
        connect(f"{environment.endpoints['chat_ws']}?token={forged}", open_timeout=10) as ws,
        pytest.raises(ConnectionClosed) as closed,
    ):
        ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


def test_a_second_sandbox_in_the_same_directory_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(AlreadyRunning, match="sandbox down --dir"):
        Sandbox(sandbox.directory, ports="auto").start()
    assert Environment.load(sandbox.environment_path) == sandbox.environment  # untouched


@pytest.mark.serial  # the fixed ports are shared by the whole machine
def test_a_taken_fixed_port_stops_start_before_anything_runs(tmp_path: Path) -> None:
    port = next(port for port, _ in FIXED_PORTS.values() if port_is_free(port))
    before = child_pids()
    with (
        socket.create_server(("127.0.0.1", port)),
        pytest.raises(PortTaken, match=rf"{port} \(.*\).*in use.*--ports auto"),
    ):
        Sandbox(tmp_path, ports="fixed").start()
    assert child_pids() <= before
    assert not (tmp_path / "environment.json").exists()
    assert running_pid(tmp_path) is None


def test_an_unknown_defect_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnknownDefect, match="unknown defect no_such_thing; known defects: lose_events_on_resume"):
        Sandbox(tmp_path / "sandbox", ports="auto", defects=["no_such_thing"]).start()
    assert not (tmp_path / "sandbox").exists()


def test_a_missing_server_binary_stops_start_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAOS_REDIS_SERVER", str(tmp_path / "no-redis-server"))
    before = child_pids()
    with pytest.raises(DatastoreUnavailable, match="redis-server not found"):
        Sandbox(tmp_path, ports="auto").start()
    assert child_pids() <= before
    assert running_pid(tmp_path) is None


def test_a_failure_part_way_stops_what_was_started(sandbox: Sandbox, tmp_path: Path) -> None:
    # The stub and the engine start; the chat back-end exits at once: its database does not exist.
    direct = sandbox.environment.direct
    postgres_url = direct["postgres"].rpartition("/")[0] + "/no_such_database"
    before = child_pids()
    with pytest.raises(ServiceStartFailed, match=r"(?s)sandbox-chat did not start.*no_such_database"):
        Sandbox(tmp_path, ports="auto", postgres_url=postgres_url, redis_url=direct["redis"]).start()
    assert child_pids() <= before
    assert not (tmp_path / "environment.json").exists()
    assert (tmp_path / "proxies.json").exists()  # the engine was started with it
    assert running_pid(tmp_path) is None



def test_a_free_port_taken_before_the_engine_binds_it_is_chosen_again(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process binds a chosen port between choosing and binding: the sandbox chooses afresh.
    plan = Ports.plan
    squatter = socket.create_server(("127.0.0.1", 0))
    taken = squatter.getsockname()[1]
    plans: list[Ports] = []

    def plan_with_a_taken_port_first(mode: PortMode) -> Ports:
        ports = plan(mode)
        plans.append(dataclasses.replace(ports, redis=taken) if not plans else ports)
        return plans[-1]

    monkeypatch.setattr(Ports, "plan", plan_with_a_taken_port_first)
    direct = sandbox.environment.direct
    second = Sandbox(tmp_path, ports="auto", postgres_url=direct["postgres"], redis_url=direct["redis"])
    with squatter, second:
        assert len(plans) == 2
        assert second.environment.proxies["redis"].listen == f"127.0.0.1:{plans[1].redis}"
        assert redis.Redis.from_url(second.environment.endpoints["redis"]).ping()
