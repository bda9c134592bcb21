"""Ad-hoc faults, the engine pass-through and halt, over HTTP against the shared sandbox."""

from __future__ import annotations

import time

import httpx

from tests.support.control import Control, quick_experiment


def engine_toxics(control: Control, proxy: str = "redis") -> list[dict[str, object]]:
    toxics: list[dict[str, object]] = control.as_("viewer").get(f"/proxies/{proxy}/toxics").json()
    return toxics


def test_an_ad_hoc_fault_is_active_at_once_listed_and_removable(control: Control) -> None:
    operator = control.as_("operator")
    answer = operator.post(
        "/faults", json={"target": "redis", "type": "latency", "duration": 60, "attributes": {"latency": 5}}
    )
    assert answer.status_code == 201, answer.text
    fault = answer.json()
    assert fault["run_id"] is None and fault["driver"] == "engine" and fault["handle"]["proxy"] == "redis"
    names = [toxic["name"] for toxic in engine_toxics(control)]
    assert names == fault["handle"]["toxics"]
    assert [f["id"] for f in control.as_("viewer").get("/faults").json()] == [fault["id"]]
    assert control.as_("viewer").delete(f"/faults/{fault['id']}").status_code == 403
    assert operator.delete(f"/faults/{fault['id']}").status_code == 204
    assert engine_toxics(control) == [] and operator.get("/faults").json() == []
    assert operator.delete(f"/faults/{fault['id']}").status_code == 404


def test_an_ad_hoc_fault_ends_by_itself_at_its_time_limit(control: Control) -> None:
    fault = control.as_("operator").post("/faults", json={"target": "redis", "type": "timeout", "duration": 0.5})
    assert fault.status_code == 201 and engine_toxics(control)
    deadline = time.monotonic() + 10
    while engine_toxics(control):  # the engine's ttl: there is no event to wait on from here
        assert time.monotonic() < deadline, "the fault outlived its time limit"
        time.sleep(0.1)
    assert control.as_("viewer").get("/faults").json() == []


def test_a_fault_without_a_time_limit_or_on_nothing_is_refused(control: Control) -> None:
    operator = control.as_("operator")
    cases = [
        ({"target": "redis", "type": "latency"}, "body.duration: Field required"),
        ({"target": "redis", "type": "latency", "duration": 0}, "greater than 0"),
        ({"target": "redis", "type": "latency", "duration": 7200}, "less than or equal to 3600"),
        ({"target": "nowhere", "type": "latency", "duration": 5}, "nowhere"),
        ({"target": "redis", "type": "no_such_fault", "duration": 5}, "no_such_fault"),
    ]
    for body, expected in cases:
        answer = operator.post("/faults", json=body)
        assert answer.status_code == 422 and expected in answer.json()["detail"], (body, answer.text)
    assert engine_toxics(control) == []


def test_the_engine_api_passes_through_and_toxics_need_a_ttl(control: Control) -> None:
    operator = control.as_("operator")
    proxies = control.as_("viewer").get("/proxies").json()
    assert set(proxies) == {"postgres", "redis", "llm", "chat_ws"}
    untimed = operator.post("/proxies/redis/toxics", json={"type": "latency", "attributes": {"latency": 1}})
    assert untimed.status_code == 422 and "needs a 'ttl'" in untimed.json()["detail"]
    assert control.as_("viewer").post("/proxies/redis/toxics", json={}).status_code == 403
    timed = operator.post(
        "/proxies/redis/toxics", json={"name": "t", "type": "latency", "attributes": {"latency": 1}, "ttl": 30}
    )
    assert timed.status_code == 200, timed.text
    assert operator.delete("/proxies/redis/toxics/t").status_code == 204
    assert operator.get("/proxies/nope").status_code == 404  # the engine's own answer


def test_halt_removes_every_fault_and_blocks_runs_until_released(control: Control) -> None:
    operator, viewer = control.as_("operator"), control.as_("viewer")
    assert operator.post("/experiments", json={"name": "for-halt", "source": quick_experiment()}).is_success
    for proxy, kind, attributes in (
        ("redis", "latency", {"latency": 1}),
        ("postgres", "latency", {"latency": 1}),
        ("redis", "bandwidth", {"rate": 1000}),
    ):
        body = {"target": proxy, "type": kind, "duration": 120, "attributes": attributes}
        assert operator.post("/faults", json=body).status_code == 201, kind
    halted = viewer.post("/halt", json={"reason": "incident 42"})  # anyone may halt
    assert halted.status_code == 200, halted.text
    report = halted.json()
    assert report["halted"] is True and len(report["removed_faults"]) == 3 and report["failed"] == []
    assert viewer.get("/faults").json() == []
    assert engine_toxics(control, "redis") == engine_toxics(control, "postgres") == []
    state = viewer.get("/halt").json()
    assert state["halted"] is True and state["reason"] == "incident 42" and state["by"].startswith("test-viewer")

    refused = operator.post("/runs", json={"experiment": "for-halt"})
    assert refused.status_code == 409 and "halted (incident 42)" in refused.json()["detail"]
    assert operator.post("/faults", json={"target": "redis", "type": "latency", "duration": 5}).status_code == 409
    timed = {"type": "latency", "attributes": {"latency": 1}, "ttl": 5}
    assert operator.post("/proxies/redis/toxics", json=timed).status_code == 409

    assert viewer.delete("/halt").status_code == 403
    assert operator.delete("/halt").json() == {
        "halted": False, "by": None, "reason": None, "at": None,
        "removed_faults": [], "failed": [], "aborted_runs": [], "seconds": None,
    }  # fmt: skip
    fault = operator.post("/faults", json={"target": "redis", "type": "latency", "duration": 5})
    assert fault.status_code == 201
    assert operator.delete(f"/faults/{fault.json()['id']}").status_code == 204


def test_halt_with_no_body_works_too(control: Control) -> None:
    assert control.as_("viewer").post("/halt").status_code == 200
    assert control.as_("operator").delete("/halt").status_code == 200
    with httpx.Client(base_url=control.url) as anonymous:
        assert anonymous.post("/halt").status_code == 401
