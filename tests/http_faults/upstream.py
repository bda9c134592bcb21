"""Support for the http proxy's black-box tests: API helpers, an openai client, a raw upstream.

No tests here. Everything talks to real processes over 127.0.0.1; every blocking call
has a timeout and every loop is bounded.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai

from chaos_service.sandbox.llm_stub.script import plan_reply

IO_TIMEOUT = 10.0
MODEL = "gpt-4o-mini"
MESSAGES: list[Any] = [{"role": "user", "content": "what is the steady state?"}]


def create_http_proxy(api: httpx.Client, upstream: str, name: str) -> str:
    """Create an enabled http proxy on a free 127.0.0.1 port; returns its listen address."""
    body = {"name": name, "upstream": upstream, "listen": "127.0.0.1:0", "protocol": "http"}
    response = api.post("/proxies", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["listen"])


def expected_tokens(script: dict[str, Any]) -> tuple[str, ...]:
    return plan_reply({"model": MODEL, "messages": MESSAGES, "stub": script}).tokens


@dataclass
class Streamed:
    tokens: list[str] = field(default_factory=list)
    finish: str | None = None
    chunks: int = 0


def collect(stream: Any, into: Streamed | None = None) -> Streamed:
    """Read an openai chat stream to its end (exceptions propagate; ``into`` keeps what came)."""
    result = into or Streamed()
    for chunk in stream:
        result.chunks += 1
        if chunk.choices:
            if chunk.choices[0].delta.content:
                result.tokens.append(chunk.choices[0].delta.content)
            result.finish = chunk.choices[0].finish_reason or result.finish
    return result


class LlmProxy:
    """An http proxy on the test engine, with the calls tests make on it."""

    def __init__(self, api: httpx.Client, name: str, listen: str) -> None:
        self.api = api
        self.name = name
        self.listen = listen
        self._clients: list[openai.OpenAI] = []

    @property
    def url(self) -> str:
        return f"http://{self.listen}"

    def client(self, max_retries: int = 0, timeout: float = IO_TIMEOUT) -> openai.OpenAI:
        client = openai.OpenAI(base_url=f"{self.url}/v1", api_key="test", max_retries=max_retries, timeout=timeout)
        self._clients.append(client)
        return client

    def chat(self, client: openai.OpenAI | None = None, **kwargs: Any) -> Any:
        """A chat completion (``stream=True`` for a stream) with the default model and messages."""
        kwargs.setdefault("model", MODEL)
        kwargs.setdefault("messages", MESSAGES)
        return (client or self.client()).chat.completions.create(**kwargs)

    def stream(self, script: dict[str, Any], client: openai.OpenAI | None = None, **kwargs: Any) -> Any:
        return self.chat(client, stream=True, extra_body={"stub": script}, **kwargs)

    def add_toxic(
        self, type_name: str, *, toxicity: float | None = None, name: str | None = None, **attributes: Any
    ) -> str:
        body: dict[str, Any] = {"type": type_name, "attributes": attributes}
        if toxicity is not None:
            body["toxicity"] = toxicity
        if name is not None:
            body["name"] = name
        response = self.api.post(f"/proxies/{self.name}/toxics", json=body)
        assert response.status_code == 200, response.text
        return str(response.json()["name"])

    def update_toxic(self, name: str, **attributes: Any) -> dict[str, Any]:
        response = self.api.patch(f"/proxies/{self.name}/toxics/{name}", json={"attributes": attributes})
        assert response.status_code == 200, response.text
        return dict(response.json())

    def remove_toxic(self, name: str) -> None:
        response = self.api.delete(f"/proxies/{self.name}/toxics/{name}")
        assert response.status_code == 204, response.text

    def stats(self) -> dict[str, Any]:
        response = self.api.get(f"/proxies/{self.name}/stats")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def fired(self, toxic: str) -> int:
        return int(self.stats()["toxics"][toxic]["fired"])

    def close(self) -> None:
        for client in self._clients:
            client.close()


@dataclass
class RecordedRequest:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)


Responder = Callable[[RecordedRequest, socket.socket], bool]
"""Writes the response to a request; returns whether the connection can carry another."""


def fixed_response(head: bytes, *chunks: bytes) -> Responder:
    """Send ``head`` (status line and headers, blank line included) then each chunk."""

    def respond(request: RecordedRequest, conn: socket.socket) -> bool:
        conn.sendall(head)
        for chunk in chunks:
            conn.sendall(chunk)
        return True

    return respond


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


class RawUpstream:
    """A threaded HTTP/1.1 server on 127.0.0.1 whose responses the test writes byte by byte.

    It records each request and, per connection, whether the proxy closed it
    (``closed`` is set when a connection ends).
    """

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests: list[RecordedRequest] = []
        self.respond: Responder = fixed_response(b"HTTP/1.1 204 No Content\r\n\r\n")
        self.received = threading.Event()
        self.closed = threading.Event()
        self._peers: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._peers.append(conn)
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        conn.settimeout(IO_TIMEOUT * 3)
        buffer = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = [(k.strip().lower(), v.strip()) for k, v in (line.split(":", 1) for line in lines[1:])]
                length = int(dict(headers).get("content-length", "0"))
                while len(buffer) < length:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                body, buffer = buffer[:length], buffer[length:]
                request = RecordedRequest(method, target, headers, body)
                self.requests.append(request)
                self.received.set()
                if not self.respond(request, conn):
                    return
        except OSError:
            return
        finally:
            conn.close()
            self.closed.set()

    def close(self) -> None:
        self.sock.close()
        for peer in self._peers:
            with contextlib.suppress(OSError):
                peer.shutdown(socket.SHUT_RDWR)
            peer.close()
