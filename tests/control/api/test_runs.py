"""/runs over HTTP: a run from start to verdict, its live events (SSE, WebSocket), reports, abort."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.support.control import Control, quick_experiment


@pytest.fixture(scope="module", autouse=True)
def experiments(control: Control) -> None:
    operator = control.as_("operator")
    for name, duration in (("quick", "1s"), ("long", "30s")):
        assert operator.post("/experiments", json={"name": name, "source": quick_experiment(duration)}).is_success


def sse(client: httpx.Client, path: str, **headers: str) -> Iterator[dict[str, Any]]:
    """The events of a server-sent stream, parsed, until it ends."""
    with client.stream("GET", path, headers=headers, timeout=60) as stream:
        assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
        event: dict[str, Any] = {}
        for line in stream.iter_lines():
            if line.startswith(("id:", "event:", "data:")):
                key, _, value = line.partition(": ")
                event[key.rstrip(":")] = value
            elif not line and event:
                yield event
                event = {}


def test_a_run_streams_its_events_and_leaves_journal_junit_and_report(control: Control) -> None:
    operator, viewer = control.as_("operator"), control.as_("viewer")
    started = operator.post("/runs", json={"experiment": "quick"})
    assert started.status_code == 202, started.text
    run = started.json()
    assert run["status"] == "running" and run["experiment"] == "quick" and run["replica"] == "r1"
    assert started.headers["location"] == f"/runs/{run['id']}"

    events = list(sse(viewer, f"/runs/{run['id']}/events"))
    kinds = [event["event"] for event in events]
    assert kinds[0] == "started" and kinds[-1] == "finished" and "status" in kinds
    assert [int(event["id"]) for event in events] == list(range(1, len(events) + 1))
    messages = [json.loads(event["data"])["data"].get("text", "") for event in events]
    assert any("fault slow applied" in text for text in messages)
    finished = json.loads(events[-1]["data"])["data"]
    assert finished["status"] == "passed", finished

    # a reconnecting client resumes after the last id it saw
    resumed = list(sse(viewer, f"/runs/{run['id']}/events", **{"Last-Event-ID": str(len(events) - 1)}))
    assert [event["event"] for event in resumed] == ["finished"]

    done = viewer.get(f"/runs/{run['id']}").json()
    assert done["status"] == "passed" and done["finished_at"] and done["progress"] is None
    journal = viewer.get(f"/runs/{run['id']}/journal")
    assert journal.headers["content-type"] == "application/json"
    assert journal.json()["status"] == "passed" and journal.json()["run_id"] == run["id"]
    junit = ET.fromstring(viewer.get(f"/runs/{run['id']}/junit").text)
    assert int(junit.get("failures", "-1")) == 0 and int(junit.get("tests", "0")) > 0
    page = viewer.get(f"/runs/{run['id']}/report")
    assert page.headers["content-type"].startswith("text/html") and "<svg" in page.text
    listed = viewer.get("/runs", params={"status": "passed", "experiment": "quick"}).json()
    assert run["id"] in [row["id"] for row in listed]
    assert viewer.get("/faults").json() == []


def test_an_aborted_run_removes_its_fault_and_ends_aborted(control: Control) -> None:
    operator, viewer = control.as_("operator"), control.as_("viewer")
    run = operator.post("/runs", json={"experiment": "long"}).json()
    with connect(
        control.url.replace("http", "ws") + f"/runs/{run['id']}/events/ws",
        additional_headers={"Authorization": f"Bearer {control.tokens['viewer']}"},
        open_timeout=10,
    ) as socket:
        seen: list[dict[str, Any]] = []
        for message in socket:
            seen.append(json.loads(message))
            if "applied" in seen[-1]["data"].get("text", ""):
                assert len(viewer.get("/faults").json()) == 1  # recorded in the store while it is active
                report = viewer.get(f"/runs/{run['id']}/journal")
                assert report.status_code == 409 and "still running" in report.json()["detail"]
                assert viewer.post(f"/runs/{run['id']}/abort").status_code == 403
                aborted = operator.post(f"/runs/{run['id']}/abort")
                assert aborted.status_code == 202 and aborted.json()["abort_requested"].startswith("aborted by")
    assert seen[-1]["kind"] == "finished" and seen[-1]["data"]["status"] == "aborted"
    assert seen[-1]["data"]["reason"].startswith("aborted by test-operator")
    assert viewer.get("/faults").json() == []
    toxics = viewer.get("/proxies/redis/toxics").json()
    assert toxics == []
    again = operator.post(f"/runs/{run['id']}/abort")
    assert again.status_code == 409 and "has ended already (aborted)" in again.json()["detail"]


def test_unknown_runs_and_experiments_are_404(control: Control) -> None:
    operator = control.as_("operator")
    assert operator.post("/runs", json={"experiment": "nope"}).json() == {"detail": "no experiment 'nope'"}
    for path in ("/runs/nope", "/runs/nope/journal", "/runs/nope/events"):
        assert operator.get(path).status_code == 404, path
    assert operator.post("/runs/nope/abort").status_code == 404


@pytest.mark.parametrize(
    ("headers", "code", "reason"),
    [
        ({}, 4401, "missing bearer token"),
        ({"Authorization": "Bearer cst_wrong"}, 4401, "unknown or revoked token"),
    ],
)
def test_the_websocket_closes_with_a_reason_without_a_valid_token(
    control: Control, headers: dict[str, str], code: int, reason: str
) -> None:
    url = control.url.replace("http", "ws") + "/runs/x/events/ws"
    with connect(url, additional_headers=headers) as socket, pytest.raises(ConnectionClosed) as closed:
        socket.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == code and reason in closed.value.rcvd.reason


def test_the_websocket_says_when_a_run_does_not_exist(control: Control) -> None:
    headers = {"Authorization": f"Bearer {control.tokens['viewer']}"}
    url = control.url.replace("http", "ws") + "/runs/nope/events/ws"
    with connect(url, additional_headers=headers) as socket, pytest.raises(ConnectionClosed) as closed:
        socket.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404


def test_a_dry_run_injects_nothing(control: Control) -> None:
    operator = control.as_("operator")
    run = operator.post("/runs", json={"experiment": "quick", "dry_run": True}).json()
    assert run["dry_run"] is True
    assert [event["event"] for event in sse(operator, f"/runs/{run['id']}/events")][-1] == "finished"
    row = operator.get(f"/runs/{run['id']}").json()
    assert row["status"] == "passed"
    assert operator.get(f"/runs/{run['id']}/journal").json()["faults"] == []
