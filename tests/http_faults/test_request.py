from __future__ import annotations

import pytest

from chaos_service.http_faults.request import RequestInfo, matches, request_model

CHAT = RequestInfo(
    "post", "/v1/chat/completions?x=1", [(b"content-type", b"application/json")], b'{"model": "gpt-4o-mini"}'
)


def test_the_request_exposes_path_header_and_model() -> None:
    assert (CHAT.method, CHAT.path, CHAT.model) == ("POST", "/v1/chat/completions", "gpt-4o-mini")
    assert CHAT.header(b"content-type") == b"application/json"
    assert CHAT.header(b"x-missing") is None
    assert RequestInfo("GET", "http://api.example/v1/models?a=b").path == "/v1/models"
    assert RequestInfo("GET", "http://api.example").path == "/"


@pytest.mark.parametrize(
    ("body", "model"),
    [
        (b'{"model": "gpt-4o"}', "gpt-4o"),
        (b'  {"model": 3}', None),
        (b'{"model": "x"', None),  # truncated JSON
        (b'["model"]', None),
        (b"model=gpt-4o", None),
        (b"", None),
    ],
)
def test_the_model_comes_from_a_json_object_body_only(body: bytes, model: str | None) -> None:
    assert request_model(body) == model


@pytest.mark.parametrize(
    ("method", "path", "model", "selected"),
    [
        ("", "", "", True),
        ("POST", "", "", True),
        ("post", "", "", True),
        ("GET", "", "", False),
        ("", "/v1/chat/*", "", True),
        ("", "/v1/chat/completions", "", True),
        ("", "/v1/models", "", False),
        ("", "/V1/*", "", False),  # globs are case-sensitive
        ("", "", "gpt-4o*", True),
        ("", "", "gpt-4o", False),
        ("", "", "gpt-?o-mini", True),
        ("POST", "/v1/*", "claude-*", False),
    ],
)
def test_match_attributes_select_requests(method: str, path: str, model: str, selected: bool) -> None:
    assert matches(method, path, model, CHAT) is selected


def test_a_model_pattern_never_matches_a_request_without_a_model() -> None:
    assert not matches("", "", "*", RequestInfo("GET", "/v1/models"))
    assert matches("", "", "", RequestInfo("GET", "/v1/models"))
