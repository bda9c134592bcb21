"""Several ``serve`` replicas on one Postgres store, and a replica killed with SIGKILL mid-run."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from chaos_service.sandbox.datastores import ExternalServer, PostgresServer
from chaos_service.sandbox.stack import Sandbox
from tests.support.control import make_tokens, new_postgres_store, quick_experiment, start_control
from tests.support.webhook import Receiver


def events(url: str, token: str, run_id: str) -> Iterator[dict[str, Any]]:
    """A run's events from the SSE stream of the replica at ``url``, until the stream ends."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.stream("GET", f"{url}/runs/{run_id}/events", headers=headers, timeout=60) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                yield json.loads(line[len("data: ") :])


def client(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_a_run_started_on_one_replica_is_followed_and_aborted_on_the_other(
    sandbox: Sandbox, postgres_server: PostgresServer | ExternalServer
) -> None:
    store = new_postgres_store(postgres_server.url)
    tokens = make_tokens(store)
    with (
        start_control(sandbox.environment_path, store, "a") as a,
        start_control(sandbox.environment_path, store, "b") as b,
        client(a.url, tokens["operator"]) as on_a,
        client(b.url, tokens["operator"]) as on_b,
    ):
        assert on_a.post("/experiments", json={"name": "long", "source": quick_experiment("30s")}).is_success
        run = on_a.post("/runs", json={"experiment": "long"}).json()
        seen = []
        for event in events(b.url, tokens["viewer"], run["id"]):
            seen.append(event)
            if "applied" in event["data"].get("text", ""):
                row = on_b.get(f"/runs/{run['id']}").json()
                assert row["status"] == "running" and row["replica"] == "a"
                assert len(on_b.get("/faults").json()) == 1
                assert on_b.post(f"/runs/{run['id']}/abort").status_code == 202
        assert seen[-1]["kind"] == "finished" and seen[-1]["data"]["status"] == "aborted"
        assert on_a.get(f"/runs/{run['id']}").json()["status"] == "aborted"
        assert on_a.get("/faults").json() == [] and on_a.get("/proxies/redis/toxics").json() == []


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def test_after_sigkill_mid_run_a_restart_removes_the_faults_and_marks_the_run_interrupted(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    store = str(tmp_path / "control.db")
    tokens = make_tokens(store)
    first = start_control(sandbox.environment_path, store, "k")
    with client(first.url, tokens["operator"]) as on_first:
        assert on_first.post("/experiments", json={"name": "long", "source": quick_experiment("60s")}).is_success
        run = on_first.post("/runs", json={"experiment": "long"}).json()
        for event in events(first.url, tokens["viewer"], run["id"]):
            if "applied" in event["data"].get("text", ""):
                break
    worker = children(first.pid)
    assert len(worker) == 1
    # The control plane and its run worker die with no chance to clean up (the worker frozen
    # first, so that it cannot notice its parent's end and remove the fault itself).
    os.kill(worker[0], signal.SIGSTOP)
    os.kill(first.pid, signal.SIGKILL)
    os.kill(worker[0], signal.SIGKILL)
    first.stop()
    engine = httpx.get(f"{sandbox.environment.engine}/proxies/redis/toxics").json()
    assert len(engine) == 1  # the fault outlived both: only its ttl (60 s + margin) would end it

    with start_control(sandbox.environment_path, store, "k") as second, client(second.url, tokens["viewer"]) as on:
        assert second.proc is not None and second.proc.stdout is not None
        assert "marked 1 runs interrupted and removed 1 faults" in second.proc.stdout.readline()
        row = on.get(f"/runs/{run['id']}").json()
        assert row["status"] == "interrupted" and "stopped during the run" in row["reason"]
        assert on.get("/faults").json() == []
        assert httpx.get(f"{sandbox.environment.engine}/proxies/redis/toxics").json() == []


def test_a_game_day_fires_once_per_fire_time_across_two_replicas(
    sandbox: Sandbox, postgres_server: PostgresServer | ExternalServer
) -> None:
    store = new_postgres_store(postgres_server.url)
    tokens = make_tokens(store)
    receiver = Receiver()
    with (
        start_control(sandbox.environment_path, store, "a") as a,
        start_control(sandbox.environment_path, store, "b") as b,
        client(a.url, tokens["operator"]) as on_a,
        client(b.url, tokens["operator"]) as on_b,
    ):
        for name in ("first", "second"):
            assert on_a.post("/experiments", json={"name": name, "source": quick_experiment()}).is_success
        body = {"cron": "*/5 * * * * *", "experiments": ["first", "second"], "webhook": receiver.url}
        assert on_a.put("/schedules/often", json=body).status_code == 201  # b loads it on its next sync
        posted = receiver.wait_for(2, timeout=90)
        assert on_b.put("/schedules/often", json={**body, "enabled": False}).status_code == 200
        firings = on_b.get("/schedules/often").json()["recent_firings"]
        runs = on_a.get("/runs", params={"schedule": "often", "limit": 1000}).json()
    receiver.close()

    assert len(posted) >= 2
    fire_times = [body["fire_time"] for body in posted]
    assert len(set(fire_times)) == len(fire_times)  # one notice per fire time: each fired once
    assert len({f["fire_time"] for f in firings}) == len(firings)
    ran = [f for f in firings if f["outcome"] not in (None, "skipped")]
    for firing in ran:  # both experiments, in order, each run once
        assert [run["experiment"] for run in firing["detail"]["runs"]] == ["first", "second"]
    assert {f["replica"] for f in firings} <= {"a", "b"}
    # no run started twice for a fire time: the schedule's runs are exactly those of its firings
    started = {run["id"] for run in runs}
    recorded = {run["run_id"] for f in firings if f["detail"] for run in f["detail"]["runs"]}
    assert recorded <= started and len(started) <= len(recorded) + 2  # + a firing still under way
    for notice in posted:
        if notice["outcome"] != "skipped":
            assert [run["status"] for run in notice["runs"]] == ["passed", "passed"], notice
