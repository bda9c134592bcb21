"""The sandbox's environment files and client tokens (no processes)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
import pytest

from chaos_service.errors import InvalidInput
from chaos_service.sandbox.chat.auth import issue_token
from chaos_service.sandbox.environment import (
    Auth,
    Environment,
    Proxy,
    SandboxNotRunning,
    proxies_config,
    write_proxies,
)

SECRET = "a-sandbox-secret-that-is-32-bytes-or-longer"

PROXIES = {
    "postgres": Proxy("tcp", "127.0.0.1:25432", "127.0.0.1:41234"),
    "redis": Proxy("tcp", "127.0.0.1:26379", "127.0.0.1:41235"),
    "llm": Proxy("http", "127.0.0.1:28080", "127.0.0.1:8081"),
    "chat_ws": Proxy("websocket", "127.0.0.1:28081", "127.0.0.1:8080"),
}


def environment() -> Environment:
    return Environment(
        engine="http://127.0.0.1:8474",
        proxies=PROXIES,
        endpoints={
            "chat_ws": "ws://127.0.0.1:28081/ws",
            "health": "http://127.0.0.1:8080/health",
            "postgres": "postgresql://postgres@127.0.0.1:25432/postgres",
            "redis": "redis://127.0.0.1:26379/0",
            "llm": "http://127.0.0.1:28080/v1",
        },
        direct={
            "chat_ws": "ws://127.0.0.1:8080/ws",
            "postgres": "postgresql://postgres@127.0.0.1:41234/postgres",
            "redis": "redis://127.0.0.1:41235/0",
            "llm": "http://127.0.0.1:8081/v1",
        },
        auth=Auth(secret=SECRET),
        processes={"supervisor": 4100, "postgres": 4101, "redis": 4102, "llm_stub": 4103, "engine": 4104, "chat": 4105},
        defects=["lose_events_on_resume"],
    )


def test_the_document_has_the_documented_shape() -> None:
    document = json.loads(environment().to_json())
    assert list(document) == ["engine", "proxies", "endpoints", "direct", "auth", "processes", "defects"]
    assert document["proxies"]["chat_ws"] == {
        "protocol": "websocket",
        "listen": "127.0.0.1:28081",
        "upstream": "127.0.0.1:8080",
    }
    assert document["auth"] == {"algorithm": "HS256", "secret": SECRET}
    assert document["processes"]["chat"] == 4105
    assert document["defects"] == ["lose_events_on_resume"]


def test_write_and_load_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "environment.json"
    environment().write(path)
    assert Environment.load(path) == environment()
    assert [p.name for p in tmp_path.iterdir()] == ["environment.json"]  # no partial file left


def test_a_missing_file_says_no_sandbox_runs(tmp_path: Path) -> None:
    with pytest.raises(SandboxNotRunning) as caught:
        Environment.load(tmp_path / "environment.json")
    assert str(caught.value) == (
        f"no sandbox is running in {tmp_path}: run `chaos-service sandbox up --dir {tmp_path}`"
    )
    assert isinstance(caught.value, InvalidInput)


@pytest.mark.parametrize(
    "text",
    ["", "{not json", "[]", '{"engine": "http://x"}', environment().to_json().replace('"chat": 4105', '"chat": "x"')],
    ids=["empty", "not-json", "not-an-object", "missing-fields", "bad-pid"],
)
def test_a_corrupt_file_is_named(tmp_path: Path, text: str) -> None:
    path = tmp_path / "environment.json"
    path.write_text(text)
    with pytest.raises(InvalidInput, match="not a sandbox environment file") as caught:
        Environment.load(path)
    assert str(path) in str(caught.value)
    assert not isinstance(caught.value, SandboxNotRunning)


def test_proxies_json_is_toxiproxy_config(tmp_path: Path) -> None:
    path = tmp_path / "proxies.json"
    write_proxies(path, PROXIES)
    document = json.loads(path.read_text())
    assert document == proxies_config(PROXIES)
    assert document[3] == {
        "name": "chat_ws",
        "listen": "127.0.0.1:28081",
        "upstream": "127.0.0.1:8080",
        "protocol": "websocket",
        "enabled": True,
    }
    assert [p["name"] for p in document] == ["postgres", "redis", "llm", "chat_ws"]


def test_a_token_carries_sub_and_exp() -> None:
    before = time.time()
    token = issue_token(SECRET, "alice@example.com", 60)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["sub"] == "alice@example.com"
    assert before + 59 <= claims["exp"] <= time.time() + 61
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "another-key-also-long-enough-for-hs256!", algorithms=["HS256"])


def test_an_expired_token_is_refused() -> None:
    token = issue_token(SECRET, "alice", -1)
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(token, SECRET, algorithms=["HS256"])
