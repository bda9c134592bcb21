"""Toxics added, updated and removed while requests are in flight."""

from __future__ import annotations

import threading
import time

from tests.http_faults.upstream import LlmProxy, Streamed, expected_tokens


def read_until(stream: object, result: Streamed, tokens: int) -> None:
    """Read chunks until ``tokens`` tokens have arrived."""
    for _ in range(1000):
        if len(result.tokens) >= tokens:
            return
        chunk = next(stream)  # type: ignore[call-overload]
        if chunk.choices and chunk.choices[0].delta.content:
            result.tokens.append(chunk.choices[0].delta.content)
    raise AssertionError("tokens did not arrive")


def read_rest(stream: object, result: Streamed) -> None:
    for chunk in stream:  # type: ignore[attr-defined]
        if chunk.choices:
            if chunk.choices[0].delta.content:
                result.tokens.append(chunk.choices[0].delta.content)
            result.finish = chunk.choices[0].finish_reason or result.finish


def test_removing_a_stall_mid_stream_releases_it_and_loses_nothing(llm_proxy: LlmProxy) -> None:
    stall = llm_proxy.add_toxic("sse_stall", after=3)  # duration 0: until removed
    script = {"tokens": 12}
    stream = llm_proxy.stream(script, llm_proxy.client(timeout=30))
    result = Streamed()
    read_until(stream, result, 2)  # role chunk + 2 tokens = 3 events, then the stall
    assert llm_proxy.fired(stall) == 1
    started = time.monotonic()
    llm_proxy.remove_toxic(stall)
    read_rest(stream, result)
    assert time.monotonic() - started < 2
    assert tuple(result.tokens) == expected_tokens(script)
    assert result.finish == "stop"


def test_updating_a_stall_releases_it(llm_proxy: LlmProxy) -> None:
    stall = llm_proxy.add_toxic("sse_stall", after=2)
    stream = llm_proxy.stream({"tokens": 6}, llm_proxy.client(timeout=30))
    result = Streamed()
    read_until(stream, result, 1)
    llm_proxy.update_toxic(stall, keepalive=100)
    read_rest(stream, result)
    assert len(result.tokens) == 6


def test_updating_a_delay_applies_at_once(llm_proxy: LlmProxy) -> None:
    pace = llm_proxy.add_toxic("sse_delay", delay=5000)
    stream = llm_proxy.stream({"tokens": 20}, llm_proxy.client(timeout=30))  # the headers go out undelayed
    started = time.monotonic()
    llm_proxy.update_toxic(pace, delay=0)
    result = Streamed()
    read_rest(stream, result)
    assert len(result.tokens) == 20
    assert time.monotonic() - started < 2  # the delay under way was released too


def test_removing_a_delay_releases_a_paced_stream(llm_proxy: LlmProxy) -> None:
    pace = llm_proxy.add_toxic("sse_delay", delay=5000)
    stream = llm_proxy.stream({"tokens": 5}, llm_proxy.client(timeout=30))
    started = time.monotonic()
    llm_proxy.remove_toxic(pace)
    result = Streamed()
    read_rest(stream, result)
    assert len(result.tokens) == 5
    assert time.monotonic() - started < 2


def test_removing_an_http_delay_releases_the_waiting_request(llm_proxy: LlmProxy) -> None:
    delay = llm_proxy.add_toxic("http_delay", delay=60_000)
    replies: list[str] = []
    client = llm_proxy.client(timeout=30)
    worker = threading.Thread(target=lambda: replies.append(llm_proxy.chat(client).choices[0].message.content))
    worker.start()
    for _ in range(200):  # wait until the request is held (it has fired), bounded
        if llm_proxy.fired(delay):
            break
        time.sleep(0.01)
    started = time.monotonic()
    llm_proxy.remove_toxic(delay)
    worker.join(10)
    assert replies and replies[0].startswith("Echo:")
    assert time.monotonic() - started < 2


def test_a_toxic_added_mid_stream_spares_the_requests_in_flight(llm_proxy: LlmProxy) -> None:
    script = {"tokens": 8}
    stream = llm_proxy.stream(script)
    result = Streamed()
    read_until(stream, result, 1)
    llm_proxy.add_toxic("sse_cut", after=0)
    read_rest(stream, result)
    assert tuple(result.tokens) == expected_tokens(script)
    cut = Streamed()
    read_rest(llm_proxy.stream(script), cut)
    assert cut.tokens == []


def test_a_ttl_removes_the_toxic_by_itself(llm_proxy: LlmProxy) -> None:
    response = llm_proxy.api.post(
        f"/proxies/{llm_proxy.name}/toxics", json={"type": "http_error", "name": "brief", "ttl": 0.3}
    )
    assert response.status_code == 200, response.text
    client = llm_proxy.client()
    assert llm_proxy.fired("brief") == 0
    for _ in range(300):
        if not llm_proxy.api.get(f"/proxies/{llm_proxy.name}/toxics").json():
            break
        time.sleep(0.01)
    assert llm_proxy.chat(client).choices[0].message.content.startswith("Echo:")
