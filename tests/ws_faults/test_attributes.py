"""Attribute parsing of every websocket toxic type: defaults, round trips and clear errors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaos_service.errors import InvalidToxic
from chaos_service.ws_faults import REGISTRY, CloseAfter, Delay, Drop, Duplicate, Refuse, Reorder

DEFAULTS: dict[str, dict[str, Any]] = {
    "ws_drop": {"field": "", "value": ""},
    "ws_delay": {"field": "", "value": "", "delay": 0, "jitter": 0},
    "ws_duplicate": {"field": "", "value": "", "copies": 1},
    "ws_reorder": {"field": "", "value": "", "window": 2, "timeout": 1000},
    "ws_close": {"field": "", "value": "", "after": 0, "code": 1000, "reason": ""},
    "ws_refuse": {"status": 503, "retry_after": None, "body": ""},
}


def test_registry_names_every_type_once() -> None:
    assert sorted(REGISTRY) == sorted(DEFAULTS)
    assert all(cls.type_name == name for name, cls in REGISTRY.items())


@pytest.mark.parametrize("type_name", sorted(DEFAULTS))
def test_empty_attributes_give_the_defaults_and_show_every_attribute(type_name: str) -> None:
    assert REGISTRY[type_name].from_attributes({}).attribute_values() == DEFAULTS[type_name]


@pytest.mark.parametrize("type_name", sorted(DEFAULTS))
def test_null_means_default(type_name: str) -> None:
    nulls = dict.fromkeys(DEFAULTS[type_name])
    assert REGISTRY[type_name].from_attributes(nulls).attribute_values() == DEFAULTS[type_name]


def test_keys_match_case_insensitively_and_integral_floats_are_integers() -> None:
    toxic = Delay.from_attributes({"DELAY": 250.0, "Jitter": 10, "Field": "type", "VALUE": "token"})
    assert toxic == Delay(field="type", value="token", delay=250, jitter=10)


def test_integers_are_accepted_as_match_values() -> None:
    assert Drop.from_attributes({"field": "seq", "value": 3}).value == "3"


@pytest.mark.parametrize(
    ("cls", "raw", "expected"),
    [
        (Delay, {"delai": 5}, "unknown attribute 'delai' for toxic type ws_delay (valid: delay, field, jitter, value)"),
        (
            Refuse,
            {"code": 1000},
            "unknown attribute 'code' for toxic type ws_refuse (valid: body, retry_after, status)",
        ),
        (Delay, {"delay": -1}, "attribute 'delay' of toxic type ws_delay must be an integer from 0 to 86400000 (ms)"),
        (Delay, {"jitter": 1.5}, "attribute 'jitter' of toxic type ws_delay must be an integer"),
        (Delay, {"delay": "100"}, "attribute 'delay' of toxic type ws_delay must be an integer"),
        (Delay, {"delay": True}, "attribute 'delay' of toxic type ws_delay must be an integer"),
        (
            Duplicate,
            {"copies": 1001},
            "attribute 'copies' of toxic type ws_duplicate must be an integer from 0 to 1000",
        ),
        (Reorder, {"window": 1}, "attribute 'window' of toxic type ws_reorder must be an integer from 2 to 1000"),
        (Reorder, {"timeout": 0}, "attribute 'timeout' of toxic type ws_reorder must be an integer from 1 to"),
        (CloseAfter, {"code": 1005}, "attribute 'code' of toxic type ws_close must be one of 1000, 1001, 1006"),
        (CloseAfter, {"code": 2999}, "3000-4999, got 2999"),
        (CloseAfter, {"code": "1000"}, "attribute 'code' of toxic type ws_close must be one of"),
        (
            CloseAfter,
            {"reason": "é" * 62},
            "attribute 'reason' of toxic type ws_close must be a string of at most 123 bytes of UTF-8, got 124 bytes",
        ),
        (
            CloseAfter,
            {"after": -3},
            "attribute 'after' of toxic type ws_close must be an integer >= 0 (matching messages), got -3",
        ),
        (Refuse, {"status": 302}, "attribute 'status' of toxic type ws_refuse must be an integer from 400 to 599"),
        (Refuse, {"retry_after": -1}, "attribute 'retry_after' of toxic type ws_refuse must be an integer from 0"),
        (
            Refuse,
            {"body": ["x"]},
            "attribute 'body' of toxic type ws_refuse must be a string of at most 65536 characters, got list ['x']",
        ),
        (Drop, {"field": "data..kind"}, "attribute 'field' of toxic type ws_drop must be a dotted path"),
        (Drop, {"field": 3}, "attribute 'field' of toxic type ws_drop must be a dotted path"),
        (Drop, {"value": "x"}, "attribute 'value' of toxic type ws_drop needs a 'field' to compare with"),
    ],
)
def test_bad_attributes_are_refused_with_a_message_naming_them(cls: Any, raw: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidToxic) as info:
        cls.from_attributes(raw)
    assert expected in str(info.value)


def test_messages_show_the_bad_value() -> None:
    with pytest.raises(InvalidToxic, match=r"got -1$"):
        Delay.from_attributes({"delay": -1})


@pytest.mark.parametrize("code", [1000, 1001, 1006, 1008, 1011, 1012, 1013, 3000, 4001, 4999])
def test_close_codes_allowed(code: int) -> None:
    assert CloseAfter.from_attributes({"code": code}).code == code


# -- round trips (PATCH merges into attribute_values) ------------------------------------

paths = st.from_regex(r"[a-z]{1,5}(\.[a-z0-9]{1,5}){0,2}", fullmatch=True)
match: st.SearchStrategy[dict[str, str]] = st.one_of(
    st.just({}),
    st.fixed_dictionaries({"field": paths}),
    st.fixed_dictionaries({"field": paths, "value": st.text(max_size=20)}),
)
ms = st.integers(0, 86_400_000)
codes = st.one_of(st.sampled_from([1000, 1001, 1006, 1008, 1011, 1012, 1013]), st.integers(3000, 4999))
attributes = st.one_of(
    st.tuples(st.just(Drop), match),
    st.tuples(st.just(Delay), st.builds(lambda m, d, j: {**m, "delay": d, "jitter": j}, match, ms, ms)),
    st.tuples(st.just(Duplicate), st.builds(lambda m, c: {**m, "copies": c}, match, st.integers(0, 1000))),
    st.tuples(
        st.just(Reorder),
        st.builds(lambda m, w, t: {**m, "window": w, "timeout": t}, match, st.integers(2, 1000), st.integers(1, 10**6)),
    ),
    st.tuples(
        st.just(CloseAfter),
        st.builds(
            lambda m, a, c, r: {**m, "after": a, "code": c, "reason": r},
            match,
            st.integers(0, 2**40),
            codes,
            st.text(max_size=30),
        ),
    ),
    st.tuples(
        st.just(Refuse),
        st.fixed_dictionaries(
            {"status": st.integers(400, 599)},
            optional={"retry_after": st.integers(0, 3600), "body": st.text(max_size=50)},
        ),
    ),
)


@given(attributes)
def test_attribute_values_round_trip(case: tuple[Any, dict[str, Any]]) -> None:
    cls, raw = case
    toxic = cls.from_attributes(raw)
    shown = toxic.attribute_values()
    assert cls.from_attributes(shown) == toxic
    assert {key: shown[key] for key in raw} == raw


def test_a_patch_merges_into_the_shown_attributes() -> None:
    toxic = CloseAfter.from_attributes({"after": 3, "code": 1012, "reason": "restart"})
    updated = CloseAfter.from_attributes({**toxic.attribute_values(), "after": 5})
    assert updated == CloseAfter(after=5, code=1012, reason="restart")
