"""The chat back-end behind real proxies, for black-box tests, and a client that speaks its protocol.

`chat_stack(*defects)` puts tcp proxies in front of the session's private Postgres and
Redis, an http proxy in front of the LLM stub and a websocket proxy in front of a new
chat back-end process (with those defects on), all in the session's engine. Every wait
has a timeout; nothing sleeps to synchronise.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from chaos_service.sandbox.chat.auth import issue_token
from chaos_service.sandbox.chat.events import TERMINAL
from chaos_service.sandbox.chat.process import ChatProcess
from chaos_service.sandbox.datastores import ExternalServer, PostgresServer, RedisServer
from chaos_service.sandbox.llm_stub.process import LlmStubProcess
from tests.support.engine import EngineProcess

TIMEOUT = 10.0
MAX_MESSAGES = 10_000
_stack_numbers = itertools.count(1)


class ChatClient:
    """A sync WebSocket client of the chat back-end; ``received`` keeps every message."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.received: list[dict[str, Any]] = []

    def send(self, **message: Any) -> None:
        self.connection.send(json.dumps(message))

    def recv(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(self.connection.recv(timeout=timeout))
        self.received.append(message)
        return message

    def until(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = TIMEOUT) -> list[dict[str, Any]]:
        """Messages up to and including the first that satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        messages = []
        for _ in range(MAX_MESSAGES):
            message = self.recv(max(0.01, deadline - time.monotonic()))
            messages.append(message)
            if predicate(message):
                return messages
        raise AssertionError(f"no matching message among {MAX_MESSAGES}")

    def run(self, content: str, client_msg_id: str | None = None, timeout: float = TIMEOUT) -> list[dict[str, Any]]:
        """Send a message and collect its run's events up to the terminal one."""
        message: dict[str, Any] = {"type": "message", "content": content}
        if client_msg_id is not None:
            message["client_msg_id"] = client_msg_id
        self.send(**message)
        return self.until(lambda m: m.get("type") in TERMINAL, timeout)

    def ping(self) -> list[dict[str, Any]]:
        """Everything received before the answer to a ping (the pong excluded)."""
        self.send(type="ping")
        return self.until(lambda m: m.get("type") == "pong")[:-1]

    def close_code(self, timeout: float = TIMEOUT) -> tuple[int, str]:
        """Wait for the server to close; its code and reason."""
        try:
            for _ in range(MAX_MESSAGES):
                self.connection.recv(timeout=timeout)
        except ConnectionClosed as closed:
            assert closed.rcvd is not None, "closed without a close frame"
            return closed.rcvd.code, closed.rcvd.reason
        raise AssertionError("the connection stayed open")

    def close(self) -> None:
        with contextlib.suppress(ConnectionClosed):  # already closed by the server, with its reason
            self.connection.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass
class ChatStack:
    api: httpx.Client
    chat: ChatProcess
    secret: str
    proxies: dict[str, str]  # proxy role -> its name in the engine
    listen: dict[str, str]  # proxy role -> host:port
    defects: tuple[str, ...] = ()
    _clients: list[ChatClient] = field(default_factory=list)

    @property
    def ws_url(self) -> str:
        return f"ws://{self.listen['chat_ws']}/ws"

    @property
    def direct_ws_url(self) -> str:
        return self.chat.url.replace("http://", "ws://") + "/ws"

    def token(self, user: str, ttl: float = 600.0) -> str:
        return issue_token(self.secret, user, ttl)

    def connect(self, user: str | None, *, direct: bool = False, token: str | None = None) -> ChatClient:
        """A client of ``user`` (through the chat_ws proxy unless ``direct``)."""
        url = self.direct_ws_url if direct else self.ws_url
        if token is None and user is not None:
            token = self.token(user)
        client = ChatClient(connect(url + (f"?token={token}" if token else ""), open_timeout=TIMEOUT, legacy=True))
        self._clients.append(client)
        return client

    def health(self) -> tuple[int, dict[str, Any]]:
        response = httpx.get(self.chat.url + "/health", timeout=TIMEOUT)
        return response.status_code, response.json()

    def wait_for_sessions(self, count: int, timeout: float = TIMEOUT) -> None:
        """Until the back-end reports ``count`` open sessions (the server side of a close is not observable)."""
        deadline = time.monotonic() + timeout
        while self.health()[1]["sessions"] != count:
            assert time.monotonic() < deadline, f"sessions never reached {count}"
            time.sleep(0.02)

    def add_toxic(self, role: str, toxic_type: str, stream: str = "downstream", **attributes: Any) -> None:
        body = {"type": toxic_type, "stream": stream, "attributes": attributes}
        response = self.api.post(f"/proxies/{self.proxies[role]}/toxics", json=body)
        assert response.status_code == 200, response.text

    def set_enabled(self, role: str, enabled: bool) -> None:
        response = self.api.post(f"/proxies/{self.proxies[role]}", json={"enabled": enabled})
        assert response.status_code == 200, response.text

    def stop(self) -> None:
        for client in self._clients:
            client.close()
        self.chat.stop()
        for name in self.proxies.values():
            self.api.delete(f"/proxies/{name}")


def _url_with(url: str, address: str) -> str:
    scheme, rest = url.split("://", 1)
    tail = rest.split("/", 1)[1] if "/" in rest else ""
    credentials = rest.split("@", 1)[0] + "@" if "@" in rest.split("/", 1)[0] else ""
    return f"{scheme}://{credentials}{address}/{tail}"


@pytest.fixture
def chat_stack(
    engine: EngineProcess,
    postgres_server: PostgresServer | ExternalServer,
    redis_server: RedisServer | ExternalServer,
    llm_stub: LlmStubProcess,
) -> Iterator[Callable[..., ChatStack]]:
    """A factory: ``chat_stack("no_retry_on_llm_503", run_deadline=5)`` starts a back-end behind proxies."""
    stacks: list[ChatStack] = []
    with engine.client() as api:

        def start(*defects: str, run_deadline: float = 30.0) -> ChatStack:
            number = next(_stack_numbers)
            names = {role: f"chat{number}_{role}" for role in ("postgres", "redis", "llm", "chat_ws")}
            listen: dict[str, str] = {}
            upstreams = {
                "postgres": ("tcp", f"{postgres_server.host}:{postgres_server.port}"),
                "redis": ("tcp", f"{redis_server.host}:{redis_server.port}"),
                "llm": ("http", llm_stub.url.removeprefix("http://")),
            }
            for role, (protocol, upstream) in upstreams.items():
                listen[role] = _create_proxy(api, names[role], upstream, protocol)
            secret = secrets.token_urlsafe(32)
            args = ["--postgres-url", _url_with(postgres_server.url, listen["postgres"])]
            args += ["--redis-url", f"redis://{listen['redis']}/0", "--llm-url", f"http://{listen['llm']}/v1"]
            args += ["--run-deadline", str(run_deadline)]
            for defect in defects:
                args += ["--defect", defect]
            chat = ChatProcess(*args, env={"CHAOS_SANDBOX_JWT_SECRET": secret}, log_level="warning").start()
            listen["chat_ws"] = _create_proxy(api, names["chat_ws"], chat.url.removeprefix("http://"), "websocket")
            stack = ChatStack(api, chat, secret, names, listen, defects)
            stacks.append(stack)
            return stack

        yield start
        for stack in stacks:
            stack.stop()


def _create_proxy(api: httpx.Client, name: str, upstream: str, protocol: str) -> str:
    body = {"name": name, "listen": "127.0.0.1:0", "upstream": upstream, "protocol": protocol}
    response = api.post("/proxies", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["listen"])
