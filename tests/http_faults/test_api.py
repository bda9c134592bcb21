"""The toxic API on http proxies: validation, matching and toxicity, stats."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from chaos_service.sandbox.llm_stub.process import LlmStubProcess
from tests.http_faults.upstream import LlmProxy, create_http_proxy
from tests.support.engine import EngineProcess


def post_toxic(llm_proxy: LlmProxy, body: dict[str, Any]) -> tuple[int, str]:
    response = llm_proxy.api.post(f"/proxies/{llm_proxy.name}/toxics", json=body)
    return response.status_code, response.json().get("error", "")


def toxics(llm_proxy: LlmProxy) -> list[dict[str, Any]]:
    return list(llm_proxy.api.get(f"/proxies/{llm_proxy.name}/toxics").json())


def test_a_toxic_shows_every_attribute(llm_proxy: LlmProxy) -> None:
    llm_proxy.add_toxic("sse_cut", after=3, Mode="Reset", path="/v1/chat/*")
    assert toxics(llm_proxy) == [
        {
            "attributes": {"after": 3, "mode": "reset", "method": "", "path": "/v1/chat/*", "model": ""},
            "name": "sse_cut_downstream",
            "type": "sse_cut",
            "stream": "downstream",
            "toxicity": 1,
        }
    ]


def test_bad_attributes_are_refused_and_change_nothing(llm_proxy: LlmProxy) -> None:
    assert post_toxic(llm_proxy, {"type": "http_error", "attributes": {"status": 302}}) == (
        400,
        "attribute 'status' of toxic type http_error must be an integer from 400 to 599, got 302",
    )
    assert post_toxic(llm_proxy, {"type": "sse_stall", "attributes": {"duraton": 5}}) == (
        400,
        "unknown attribute 'duraton' for toxic type sse_stall (valid: after, duration, keepalive, method, model, path)",
    )
    assert toxics(llm_proxy) == []
    name = llm_proxy.add_toxic("sse_delay", delay=10)
    response = llm_proxy.api.patch(f"/proxies/{llm_proxy.name}/toxics/{name}", json={"attributes": {"delay": -1}})
    assert response.status_code == 400
    assert response.json()["error"] == "attribute 'delay' of toxic type sse_delay must be an integer >= 0 (ms), got -1"
    assert toxics(llm_proxy)[0]["attributes"]["delay"] == 10


def test_a_patch_merges_attributes(llm_proxy: LlmProxy) -> None:
    name = llm_proxy.add_toxic("http_error", status=429, retry_after=0.5)
    assert llm_proxy.update_toxic(name, should_retry=False)["attributes"] == {
        "status": 429,
        "message": "",
        "retry_after": 0.5,
        "should_retry": False,
        "html": False,
        "method": "",
        "path": "",
        "model": "",
    }


def test_tcp_toxic_types_are_refused_with_the_supported_list(llm_proxy: LlmProxy) -> None:
    assert post_toxic(llm_proxy, {"type": "latency", "attributes": {"latency": 10}}) == (
        400,
        "invalid toxic type: 'latency' is not one of fail_attempts, http_delay, http_error, sse_cut, sse_delay, "
        "sse_error, sse_malformed, sse_stall (protocol http)",
    )


def test_toxics_act_on_the_downstream_stream_only(llm_proxy: LlmProxy) -> None:
    assert post_toxic(llm_proxy, {"type": "http_error", "stream": "upstream"}) == (
        400,
        "http_error toxics on http proxies act on the downstream stream",
    )


def test_path_and_model_select_the_requests_a_toxic_acts_on(llm_proxy: LlmProxy) -> None:
    client = llm_proxy.client()
    llm_proxy.add_toxic("http_error", name="big-model", status=500, model="gpt-4o")
    llm_proxy.add_toxic("http_error", name="listing", status=502, path="/v1/models")
    assert llm_proxy.chat(client, model="gpt-4o-mini").choices
    with pytest.raises(openai.InternalServerError) as caught:
        llm_proxy.chat(client, model="gpt-4o")
    assert caught.value.status_code == 500
    with pytest.raises(openai.InternalServerError) as caught:
        client.models.list()
    assert caught.value.status_code == 502
    stats = llm_proxy.stats()["toxics"]
    assert (stats["big-model"]["fired"], stats["listing"]["fired"]) == (1, 1)


def test_a_method_selects_requests(llm_proxy: LlmProxy) -> None:
    llm_proxy.add_toxic("http_error", method="GET")
    client = llm_proxy.client()
    assert llm_proxy.chat(client).choices
    with pytest.raises(openai.InternalServerError):
        client.models.list()


@pytest.mark.parametrize(("toxicity", "fails"), [(0.0, False), (1.0, True)])
def test_toxicity_zero_never_acts_and_one_always_does(llm_proxy: LlmProxy, toxicity: float, fails: bool) -> None:
    name = llm_proxy.add_toxic("http_error", toxicity=toxicity)
    client = llm_proxy.client()
    for _ in range(5):
        if fails:
            with pytest.raises(openai.InternalServerError):
                llm_proxy.chat(client)
        else:
            assert llm_proxy.chat(client).choices
    assert llm_proxy.fired(name) == (5 if fails else 0)


def test_stats_count_connections_requests_bytes_and_fired_toxics(llm_proxy: LlmProxy) -> None:
    client = llm_proxy.client()
    for _ in range(3):
        llm_proxy.chat(client)
    assert llm_proxy.stats()["connections"] == {"open": 1, "total": 1}  # kept alive
    name = llm_proxy.add_toxic("sse_delay", delay=1)
    for _ in llm_proxy.stream({"tokens": 3}, client):
        pass
    stats = llm_proxy.stats()
    assert stats["protocol"] == "http" and stats["message_unit"] == "request"
    assert stats["connections"]["total"] == 1
    assert stats["upstream"]["messages"] == 4
    assert stats["downstream"]["messages"] == 4
    assert stats["upstream"]["bytes"] > 4 * 100
    assert stats["downstream"]["bytes"] > 3 * 200
    assert stats["toxics"] == {name: {"fired": 1}}


def test_the_engine_seed_makes_toxicity_reproducible(llm_stub: LlmStubProcess) -> None:
    def outcomes() -> list[int]:
        with EngineProcess("--seed", "7").start() as engine, engine.client() as api:
            proxy = LlmProxy(api, "llm", create_http_proxy(api, llm_stub.url.removeprefix("http://"), "llm"))
            proxy.add_toxic("http_error", toxicity=0.5)
            with httpx.Client(base_url=proxy.url, timeout=10) as client:
                return [client.get("/v1/models").status_code for _ in range(30)]

    first = outcomes()
    assert set(first) == {200, 503}
    assert outcomes() == first
