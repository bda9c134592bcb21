from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaos_service import http_faults
from chaos_service.errors import InvalidToxic
from chaos_service.http_faults import REGISTRY, HttpError, SseCut, SseStall


def rejected(type_name: str, attributes: dict[str, Any]) -> str:
    with pytest.raises(InvalidToxic) as caught:
        REGISTRY[type_name].from_attributes(attributes)
    return str(caught.value)


def test_the_registry_lists_every_type_by_its_name() -> None:
    assert sorted(REGISTRY) == [
        "fail_attempts",
        "http_delay",
        "http_error",
        "sse_cut",
        "sse_delay",
        "sse_error",
        "sse_malformed",
        "sse_stall",
    ]
    assert all(cls.type_name == name for name, cls in REGISTRY.items())
    assert http_faults.REGISTRY is REGISTRY


@pytest.mark.parametrize("type_name", sorted(REGISTRY))
def test_defaults_round_trip_and_every_type_has_the_match_attributes(type_name: str) -> None:
    cls = REGISTRY[type_name]
    toxic = cls.from_attributes({})
    values = toxic.attribute_values()
    assert {"method", "path", "model"} <= set(values)
    assert cls.from_attributes(values) == toxic
    assert cls.from_attributes({name: None for name in values}) == toxic  # null: the default


def test_names_match_case_insensitively_and_values_are_normalised() -> None:
    toxic = HttpError.from_attributes({"STATUS": 429.0, "Retry_After": 1, "Method": "post", "PATH": "/v1/*"})
    assert (toxic.status, toxic.retry_after, toxic.method, toxic.path) == (429, 1.0, "POST", "/v1/*")
    assert SseCut.from_attributes({"mode": "RESET"}).mode == "reset"


def test_an_unknown_attribute_is_rejected_with_the_valid_names() -> None:
    assert rejected("sse_cut", {"afterr": 1}) == (
        "unknown attribute 'afterr' for toxic type sse_cut (valid: after, method, mode, model, path)"
    )


@pytest.mark.parametrize(
    ("type_name", "attributes", "message"),
    [
        (
            "http_error",
            {"status": 200},
            "attribute 'status' of toxic type http_error must be an integer from 400 to 599, got 200",
        ),
        (
            "http_error",
            {"status": "503"},
            "attribute 'status' of toxic type http_error must be an integer from 400 to 599, got str '503'",
        ),
        (
            "http_error",
            {"status": 503.5},
            "attribute 'status' of toxic type http_error must be an integer from 400 to 599, got 503.5",
        ),
        (
            "http_error",
            {"retry_after": -1},
            "attribute 'retry_after' of toxic type http_error must be a number of seconds from 0 to 1e+09, got -1",
        ),
        (
            "http_error",
            {"should_retry": "yes"},
            "attribute 'should_retry' of toxic type http_error must be true or false, got str 'yes'",
        ),
        ("http_error", {"html": 1}, "attribute 'html' of toxic type http_error must be true or false, got 1"),
        (
            "http_delay",
            {"delay": -5},
            "attribute 'delay' of toxic type http_delay must be an integer >= 0 (ms), got -5",
        ),
        (
            "sse_delay",
            {"jitter": True},
            "attribute 'jitter' of toxic type sse_delay must be an integer >= 0 (ms), got bool True",
        ),
        (
            "sse_cut",
            {"mode": "abort"},
            "attribute 'mode' of toxic type sse_cut must be one of clean, reset, got str 'abort'",
        ),
        ("sse_stall", {"after": -1}, "attribute 'after' of toxic type sse_stall must be an integer >= 0, got -1"),
        (
            "sse_error",
            {"message": 5},
            "attribute 'message' of toxic type sse_error must be a string of at most 4096 characters, got 5",
        ),
        (
            "fail_attempts",
            {"attempts": 1e30},
            "attribute 'attempts' of toxic type fail_attempts must be an integer from 0 to 9223372036854775807,"
            " got 1e+30",
        ),
        (
            "sse_malformed",
            {"method": "PO ST"},
            "attribute 'method' of toxic type sse_malformed must be an HTTP method such as POST (or \"\" for any), "
            "got str 'PO ST'",
        ),
        (
            "sse_malformed",
            {"path": ["/v1"]},
            "attribute 'path' of toxic type sse_malformed must be a string of at most 4096 characters,"
            " got list ['/v1']",
        ),
    ],
)
def test_bad_values_are_rejected_naming_attribute_value_and_what_is_allowed(
    type_name: str, attributes: dict[str, Any], message: str
) -> None:
    assert rejected(type_name, attributes) == message


def test_overlong_text_is_rejected() -> None:
    assert re.fullmatch(
        r"attribute 'model' of toxic type http_delay must be a string of at most \d+ characters, got 5000 characters",
        rejected("http_delay", {"model": "m" * 5000}),
    )


@given(
    after=st.integers(0, 10**6),
    duration=st.integers(0, 10**6),
    keepalive=st.integers(0, 10**6),
    path=st.text(max_size=20),
)
def test_patches_merge_into_the_current_values(after: int, duration: int, keepalive: int, path: str) -> None:
    toxic = SseStall.from_attributes({"after": after, "duration": duration, "keepalive": keepalive, "path": path})
    patched = SseStall.from_attributes({**toxic.attribute_values(), "duration": 7})
    assert patched == SseStall(after=after, duration=7, keepalive=keepalive, path=path)
