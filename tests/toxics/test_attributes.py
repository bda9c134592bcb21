"""The shared attribute parsing: the loop, the general specs, their messages and round trips."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaos_service.errors import InvalidToxic
from chaos_service.toxics.attributes import (
    INT64_MAX,
    MAX_SHOWN,
    AttributeToxic,
    Choice,
    Flag,
    Integer,
    Seconds,
    Text,
    integral,
    parse_attributes,
    rejection,
    shown,
)

SPECS = (Integer("delay", 0, 1000, "ms"), Text("note"), Flag("loud"))


def refused(spec: Any, value: object) -> str:
    with pytest.raises(InvalidToxic) as caught:
        spec.parse("t", value)
    return str(caught.value)


# -- the loop ------------------------------------------------------------------------------


def test_names_match_case_insensitively_and_come_back_as_declared() -> None:
    assert parse_attributes("t", SPECS, {"DELAY": 5, "Note": "x", "loud": True}) == {
        "delay": 5,
        "note": "x",
        "loud": True,
    }


def test_none_and_missing_are_left_to_the_default() -> None:
    assert parse_attributes("t", SPECS, {"delay": None}) == {}
    assert parse_attributes("t", SPECS, {}) == {}


def test_an_unknown_name_lists_the_valid_ones_sorted() -> None:
    with pytest.raises(InvalidToxic) as caught:
        parse_attributes("t", SPECS, {"delai": 5})
    assert str(caught.value) == "unknown attribute 'delai' for toxic type t (valid: delay, loud, note)"


def test_a_type_without_attributes_says_none_are_valid() -> None:
    with pytest.raises(InvalidToxic, match=r"^unknown attribute 'x' for toxic type t \(valid: none\)$"):
        parse_attributes("t", (), {"x": 1})


def test_an_unknown_name_is_refused_even_with_a_null_value() -> None:
    with pytest.raises(InvalidToxic, match="unknown attribute 'x'"):
        parse_attributes("t", SPECS, {"x": None})


# -- messages ------------------------------------------------------------------------------


def test_the_message_style() -> None:
    error = rejection("ws_delay", "delay", "an integer from 0 to 86400000 (ms)", shown(-5))
    assert str(error) == "attribute 'delay' of toxic type ws_delay must be an integer from 0 to 86400000 (ms), got -5"


@pytest.mark.parametrize(
    ("value", "text"),
    [(-5, "-5"), (1e30, "1e+30"), (2.5, "2.5"), ("100", "str '100'"), (True, "bool True"), ([1], "list [1]")],
)
def test_values_are_shown_with_their_type_unless_numbers(value: object, text: str) -> None:
    assert shown(value) == text


def test_long_values_are_cut() -> None:
    text = shown("m" * 5000)
    assert text.startswith("str 'mmm") and text.endswith("…")
    assert len(text) == len("str ") + MAX_SHOWN


@pytest.mark.parametrize(("value", "expected"), [(3, 3), (3.0, 3), (-2.0, -2), (3.5, None), (True, None), ("3", None)])
def test_integral(value: object, expected: int | None) -> None:
    assert integral(value) == expected


# -- Integer -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "value", "must_be"),
    [
        (Integer("n"), -1, "an integer >= 0, got -1"),
        (Integer("n", unit="ms"), 1.5, "an integer >= 0 (ms), got 1.5"),
        (Integer("n"), "5", "an integer >= 0, got str '5'"),
        (Integer("n"), True, "an integer >= 0, got bool True"),
        (Integer("n"), math.nan, "an integer >= 0, got nan"),
        (Integer("n"), INT64_MAX + 1, f"an integer from 0 to {INT64_MAX}, got {INT64_MAX + 1}"),
        (Integer("n"), 1e19, f"an integer from 0 to {INT64_MAX}, got 1e+19"),
        (Integer("n", 2, 10, "messages"), 1, "an integer from 2 to 10 (messages), got 1"),
        (Integer("n", 2, 10), 11, "an integer from 2 to 10, got 11"),
    ],
)
def test_integer_refusals(spec: Integer, value: object, must_be: str) -> None:
    assert refused(spec, value) == f"attribute 'n' of toxic type t must be {must_be}"


@given(st.integers(0, INT64_MAX))
def test_any_toxiproxy_integer_is_accepted_as_is(value: int) -> None:
    assert Integer("n").parse("t", value) == value


@given(st.integers(-(2**53), 2**53))
def test_integral_floats_are_stored_as_ints(value: int) -> None:
    spec = Integer("n", -(2**53), 2**53)
    parsed = spec.parse("t", float(value))
    assert parsed == value and type(parsed) is int


def test_integer_bounds_are_inclusive() -> None:
    assert Integer("n").parse("t", INT64_MAX) == INT64_MAX
    assert Integer("n", 2, 10).parse("t", 2) == 2
    assert Integer("n", 2, 10).parse("t", 10.0) == 10


# -- Seconds, Text, Choice, Flag -----------------------------------------------------------


@given(st.floats(0, 1e9))
def test_any_number_of_seconds_in_range_is_accepted(value: float) -> None:
    assert Seconds("s").parse("t", value) == value


@pytest.mark.parametrize("value", [-1, -0.5, 1e9 + 1, math.inf, math.nan, 10**400, "1", False])
def test_seconds_refusals(value: object) -> None:
    message = refused(Seconds("s"), value)
    assert message == f"attribute 's' of toxic type t must be a number of seconds from 0 to 1e+09, got {shown(value)}"


def test_seconds_are_floats() -> None:
    assert type(Seconds("s").parse("t", 2)) is float


@given(st.text(max_size=50))
def test_any_short_text_is_accepted_as_is(value: str) -> None:
    assert Text("x", 50).parse("t", value) == value


def test_text_refusals() -> None:
    assert refused(Text("x", 4), "abcde") == (
        "attribute 'x' of toxic type t must be a string of at most 4 characters, got 5 characters"
    )
    assert refused(Text("x"), 5) == "attribute 'x' of toxic type t must be a string of at most 65536 characters, got 5"
    assert refused(Text("x", integers=True), 2.0).endswith("got 2.0")
    assert refused(Text("x", integers=True), True).endswith("got bool True")


def test_text_may_accept_integers_as_their_digits() -> None:
    assert Text("x", integers=True).parse("t", 42) == "42"


any_casing = st.sampled_from(["clean", "reset"]).flatmap(
    lambda word: st.tuples(*(st.sampled_from([c, c.upper()]) for c in word)).map("".join)
)


@given(any_casing)
def test_a_choice_in_any_casing_is_stored_lower_case(value: str) -> None:
    assert Choice("mode", ("clean", "reset")).parse("t", value) == value.lower()


def test_choices_match_case_insensitively_and_are_stored_lower_case() -> None:
    spec = Choice("mode", ("clean", "reset"))
    assert spec.parse("t", "RESET") == "reset"
    assert refused(spec, "abort") == "attribute 'mode' of toxic type t must be one of clean, reset, got str 'abort'"
    assert refused(spec, 1).endswith("must be one of clean, reset, got 1")


def test_flags_are_booleans_only() -> None:
    assert Flag("f").parse("t", False) is False
    assert refused(Flag("f"), 1) == "attribute 'f' of toxic type t must be true or false, got 1"
    assert refused(Flag("f"), "yes") == "attribute 'f' of toxic type t must be true or false, got str 'yes'"


# -- AttributeToxic ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample(AttributeToxic):
    delay: int = 0
    note: str = "hi"
    loud: bool | None = None

    type_name = "sample"
    attributes = SPECS

    def check(self) -> None:
        if self.loud and not self.note:
            raise InvalidToxic("a loud sample needs a note")


def test_absent_attributes_take_the_field_defaults_and_all_are_shown_in_order() -> None:
    assert list(Sample.from_attributes({}).attribute_values().items()) == [
        ("delay", 0),
        ("note", "hi"),
        ("loud", None),
    ]


def test_checks_across_attributes_run_after_parsing() -> None:
    with pytest.raises(InvalidToxic, match="needs a note"):
        Sample.from_attributes({"loud": True, "note": ""})


samples = st.fixed_dictionaries(
    {},
    optional={
        "delay": st.integers(0, 1000) | st.integers(0, 1000).map(float) | st.none(),
        "note": st.text(max_size=20) | st.none(),
        "loud": st.booleans() | st.none(),
    },
).filter(lambda raw: not (raw.get("loud") and raw.get("note") == ""))


@given(samples, st.fixed_dictionaries({}, optional={"delay": st.integers(0, 1000), "note": st.text(max_size=5)}))
def test_values_round_trip_and_patches_merge(raw: dict[str, Any], patch: dict[str, Any]) -> None:
    toxic = Sample.from_attributes(raw)
    shown_values = toxic.attribute_values()
    assert Sample.from_attributes(shown_values) == toxic
    given_values = {key: value for key, value in raw.items() if value is not None}
    assert {key: shown_values[key] for key in given_values} == given_values
    if patch.get("note") != "" or not toxic.loud:
        patched = Sample.from_attributes({**shown_values, **patch})
        assert patched.attribute_values() == {**shown_values, **patch}
