"""A toxic's ttl removes it by itself on http and websocket proxies too."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import openai
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.sync.server import Server, ServerConnection, serve

from chaos_service.sandbox.llm_stub.process import LlmStubProcess

TTL = 2.0  # long enough that the first request surely meets the toxic on a busy machine


def _wait_until_gone(api: httpx.Client, proxy: str) -> float:
    """Seconds from now until the proxy has no toxics left (bounded)."""
    started = time.monotonic()
    while api.get(f"/proxies/{proxy}/toxics").json():
        assert time.monotonic() - started < 5, "the toxic outlived its ttl by seconds"
    return time.monotonic() - started


@pytest.fixture
def echo_ws() -> Iterator[Server]:
    def echo(connection: ServerConnection) -> None:
        for message in connection:
            connection.send(message)

    with serve(echo, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield server
        server.shutdown()
        thread.join(timeout=5)


def test_an_http_error_with_a_ttl_stops_failing_requests(api: httpx.Client, llm_stub: LlmStubProcess) -> None:
    upstream = llm_stub.url.removeprefix("http://")
    listen = api.post("/proxies", json={"name": "llm", "upstream": upstream, "protocol": "http"}).json()["listen"]
    toxic = {"type": "http_error", "attributes": {"status": 503}, "ttl": TTL}
    assert api.post("/proxies/llm/toxics", json=toxic).status_code == 200
    client = openai.OpenAI(base_url=f"http://{listen}/v1", api_key="t", max_retries=0, timeout=10)
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4o-mini", messages=messages)  # type: ignore[arg-type]
    _wait_until_gone(api, "llm")
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages)  # type: ignore[arg-type]
    assert reply.choices[0].message.content == "Echo: hi"
    client.close()


def test_a_websocket_refusal_with_a_ttl_lets_handshakes_through_again(api: httpx.Client, echo_ws: Server) -> None:
    upstream = f"127.0.0.1:{echo_ws.socket.getsockname()[1]}"
    created = api.post("/proxies", json={"name": "ws", "upstream": upstream, "protocol": "websocket"})
    listen = created.json()["listen"]
    toxic = {"type": "ws_refuse", "attributes": {"status": 429}, "ttl": TTL}
    assert api.post("/proxies/ws/toxics", json=toxic).status_code == 200
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://{listen}/", open_timeout=5)
    assert refused.value.response.status_code == 429
    _wait_until_gone(api, "ws")
    with connect(f"ws://{listen}/", open_timeout=5) as client:
        client.send("still here")
        assert client.recv(timeout=5) == "still here"
