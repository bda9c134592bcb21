"""Run sequence checking: the compiled spec agrees with Python's `re`, and its verdicts say where and why."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaos_service.errors import InvalidInput
from chaos_service.probes.checkers.sequence import (
    DEFAULT_RUN_PATTERN,
    DEFAULT_RUN_SPEC,
    RunSpec,
    check_run,
    check_types,
)
from chaos_service.sandbox.chat.events import EVENT_TYPES, RUN_GRAMMAR, RunEvent, run_shape

S, T, X, C, D, E = EVENT_TYPES  # started, thinking, executing, completed, agent_completed, agent_error
GRAMMAR_ONLY = RunSpec(DEFAULT_RUN_PATTERN)  # the sandbox grammar without call pairing
PARALLEL = RunSpec(f"{S} ({T} | {X} | {C})* ({D} | {E})", pairs=((X, C),))


def event(kind: str, call: str | None = None, seq: int = 0) -> dict[str, Any]:
    data: dict[str, Any] = {} if call is None else {"call_id": call}
    return {"type": kind, "run_id": "r", "seq": seq, "user_id": "u", "ts": 0.0, "data": data}


# -- brute-force oracles ------------------------------------------------------------------------


def extendable(regex: re.Pattern[str], prefix: str, alphabet: str, bound: int) -> bool:
    """Whether some string of at most ``bound`` more letters completes ``prefix`` to a match."""
    return any(
        regex.fullmatch(prefix + "".join(rest))
        for k in range(bound + 1)
        for rest in itertools.product(alphabet, repeat=k)
    )


def oracle_verdict(
    regex: re.Pattern[str], word: str, alphabet: str, bound: int
) -> tuple[bool, int | None, tuple[str, ...]]:
    """(valid, first bad index, letters acceptable there) by brute force over completions."""
    for i in range(len(word)):
        if not extendable(regex, word[: i + 1], alphabet, bound):
            return False, i, tuple(a for a in alphabet if extendable(regex, word[:i] + a, alphabet, bound))
    if regex.fullmatch(word):
        return True, None, ()
    return False, len(word), tuple(a for a in alphabet if extendable(regex, word + a, alphabet, bound))


# -- the sandbox's grammar ----------------------------------------------------------------------

LETTERS = "STXCDE"  # run_shape's letter for each of EVENT_TYPES, in order
OF_LETTER = dict(zip(LETTERS, EVENT_TYPES, strict=True))
SANDBOX_RE = re.compile(RUN_GRAMMAR)


def test_every_short_run_is_judged_as_the_sandbox_grammar_judges_it() -> None:
    for n in range(7):
        for types in itertools.product(EVENT_TYPES, repeat=n):
            expected = SANDBOX_RE.fullmatch(run_shape(list(types))) is not None
            assert check_run(types).valid is expected, types


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([*EVENT_TYPES, "tool_cancelled"]), max_size=12))
def test_default_spec_verdicts_match_brute_force(types: list[str]) -> None:
    # every live prefix of this grammar completes within two events (tool_completed, agent_completed)
    word = run_shape(types)
    valid, bad, letters = oracle_verdict(SANDBOX_RE, word, LETTERS, bound=3)
    verdict = check_run(types)
    assert verdict.valid is valid
    assert verdict.first_bad_index == bad
    assert verdict.expected == tuple(OF_LETTER[a] for a in letters)
    assert verdict.got == (None if bad is None or bad == len(types) else types[bad])


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_default_spec_accepts_generated_runs_and_rejects_their_mutations(data: st.DataObject) -> None:
    word = data.draw(st.from_regex(SANDBOX_RE, fullmatch=True))
    types = [OF_LETTER[a] for a in word]
    assert check_run(types).valid
    cut = data.draw(st.integers(0, min(len(types), 12)))
    mutated = types[:cut] + data.draw(st.lists(st.sampled_from(EVENT_TYPES), max_size=3))
    valid, bad, letters = oracle_verdict(SANDBOX_RE, run_shape(mutated), LETTERS, bound=3)
    verdict = check_run(mutated)
    assert (verdict.valid, verdict.first_bad_index) == (valid, bad)
    assert verdict.expected == tuple(OF_LETTER[a] for a in letters)


# -- any pattern --------------------------------------------------------------------------------

NAMES = ("a", "b", "c")
LETTER = {"a": "x", "b": "y", "c": "z"}  # the oracle's own alphabet, independent of the checker's
Node = tuple[Any, ...]

nodes = st.recursive(
    st.sampled_from(NAMES).map(lambda name: ("name", name)),
    lambda children: st.one_of(
        st.tuples(st.just("cat"), children, children),
        st.tuples(st.just("alt"), children, children),
        st.tuples(st.just("rep"), children, st.sampled_from("*+?")),
    ),
    max_leaves=5,
)


def render(node: Node, names: bool) -> tuple[str, int]:
    """The pattern text and its precedence: 0 alternation, 1 concatenation, 2 repetition, 3 atom.

    Both renderings use as few parentheses as precedence allows, so the checker's parser is
    tested against Python's; Python forbids a repeat of a repeat, which the checker allows.
    """

    def wrap(child: Node, need: int) -> str:
        text, level = render(child, names)
        if level >= need:
            return text
        return f"({text})" if names else f"(?:{text})"

    kind = node[0]
    if kind == "name":
        return (node[1] if names else LETTER[node[1]]), 3
    if kind == "cat":
        return (" " if names else "").join([wrap(node[1], 1), wrap(node[2], 1)]), 1
    if kind == "alt":
        return (" | " if names else "|").join([wrap(node[1], 0), wrap(node[2], 0)]), 0
    return wrap(node[1], 2 if names else 3) + node[2], 2


def leaves(node: Node) -> int:
    if node[0] == "name":
        return 1
    return sum(leaves(child) for child in node[1:] if isinstance(child, tuple))


@settings(max_examples=200, deadline=None)
@given(nodes)
def test_a_compiled_pattern_accepts_exactly_what_re_fullmatch_accepts(node: Node) -> None:
    pattern, regex = render(node, names=True)[0], re.compile(render(node, names=False)[0])
    spec = RunSpec(pattern, event_types=NAMES)
    for n in range(6):
        for word in itertools.product(NAMES, repeat=n):
            letters = "".join(LETTER[name] for name in word)
            assert spec.accepts(word) is (regex.fullmatch(letters) is not None), (pattern, word)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_first_bad_index_is_the_first_prefix_no_completion_can_rescue(data: st.DataObject) -> None:
    node = data.draw(nodes)
    pattern, python = render(node, names=True)[0], render(node, names=False)[0]
    regex = re.compile(python)
    spec = RunSpec(pattern, event_types=NAMES)
    base = data.draw(st.from_regex(regex, fullmatch=True))
    tail = "".join(LETTER[n] for n in data.draw(st.lists(st.sampled_from(NAMES), max_size=3)))
    word = base[: data.draw(st.integers(0, min(len(base), 6)))] + tail
    # a live prefix completes within as many letters as the pattern has names (a Glushkov automaton path)
    valid, bad, letters = oracle_verdict(regex, word, "xyz", bound=leaves(node))
    types = [{"x": "a", "y": "b", "z": "c"}[letter] for letter in word]
    verdict = check_run(types, spec)
    assert (verdict.valid, verdict.first_bad_index) == (valid, bad), (pattern, word)
    assert verdict.expected == tuple({"x": "a", "y": "b", "z": "c"}[a] for a in letters)
    if bad is not None:
        assert spec.allowed(types[:bad]) == verdict.expected


def test_precedence_alternation_is_loosest_and_repetition_binds_to_one_name() -> None:
    spec = RunSpec("a b | c", event_types=NAMES)
    assert spec.accepts(["a", "b"]) and spec.accepts(["c"]) and not spec.accepts(["a", "c"])
    spec = RunSpec("a b*", event_types=NAMES)
    assert spec.accepts(["a"]) and spec.accepts(["a", "b", "b"]) and not spec.accepts(["a", "a", "b"])
    spec = RunSpec("(a b)+ c?", event_types=NAMES)
    assert spec.accepts(["a", "b", "a", "b"]) and spec.accepts(["a", "b", "c"]) and not spec.accepts(["c"])
    assert RunSpec("a**", event_types=NAMES).accepts([])


# -- verdicts and messages ----------------------------------------------------------------------


def test_a_valid_run() -> None:
    verdict = check_run([S, T, X, C, T, D])
    assert (verdict.valid, verdict.first_bad_index, verdict.expected, verdict.got) == (True, None, (), None)
    assert verdict.message == "a valid run of 6 events"


def test_an_unexpected_event_names_its_index_and_the_alternatives() -> None:
    verdict = check_run([S, T, T, C, D])
    assert (verdict.valid, verdict.first_bad_index, verdict.got) == (False, 3, C)
    assert verdict.expected == (T, X, D, E)
    assert verdict.message == (
        "event 3: got tool_completed, expected one of agent_thinking, tool_executing, agent_completed, agent_error"
    )


def test_an_incomplete_run_is_bad_at_its_end() -> None:
    verdict = check_run([S, T, X, C])
    assert (verdict.first_bad_index, verdict.got, verdict.expected) == (4, None, (T, X, D, E))
    assert verdict.message == (
        "the run ended after 4 events; expected one of agent_thinking, tool_executing, agent_completed, agent_error"
    )
    assert check_run([S, X]).message == "the run ended after 2 events; expected tool_completed"
    assert check_run([S]).message.startswith("the run ended after 1 event;")


def test_an_empty_run() -> None:
    verdict = check_run([])
    assert (verdict.valid, verdict.first_bad_index, verdict.expected, verdict.got) == (False, 0, (S,), None)
    assert verdict.message == "the run has no events; expected agent_started"


def test_a_run_with_only_a_terminal_event() -> None:
    verdict = check_run([D])
    assert (verdict.first_bad_index, verdict.got, verdict.expected) == (0, D, (S,))
    assert verdict.message == "event 0: got agent_completed, expected agent_started"


def test_nothing_may_follow_the_terminal_event() -> None:
    verdict = check_run([S, D, D])
    assert (verdict.first_bad_index, verdict.got, verdict.expected) == (2, D, ())
    assert verdict.message == "event 2: got agent_completed, expected no further event"


def test_an_unknown_event_type_is_bad_where_it_occurs() -> None:
    verdict = check_run([S, "tool_cancelled", D])
    assert (verdict.first_bad_index, verdict.got) == (1, "tool_cancelled")
    assert verdict.message.startswith("event 1: got unknown event type 'tool_cancelled', expected one of")
    assert check_run([{"run_id": "r", "seq": 0}]).got == "<missing>"


def test_events_may_be_types_wire_mappings_or_run_events() -> None:
    run = [
        RunEvent.create("r", i, "u", kind, 0.0, {"call_id": "c1"} if kind in (X, C) else {})
        for i, kind in enumerate([S, X, C, D])
    ]
    assert check_run(run).valid
    assert check_run([json.loads(e.wire) for e in run]).valid
    assert check_run([e.type for e in run]).valid


# -- call pairing -------------------------------------------------------------------------------


def test_a_completion_must_close_the_running_call() -> None:
    verdict = check_run([event(S), event(X, "c1"), event(C, "c2"), event(D)])
    assert (verdict.valid, verdict.first_bad_index, verdict.got) == (False, 2, C)
    assert verdict.message == "event 2: got tool_completed for call 'c2', which is not running (running: 'c1')"
    assert check_run([event(S), event(X, "c1"), event(C, "c1"), event(D)]).valid
    assert check_run([event(S), event(X, "c1"), event(C, "c2"), event(D)], GRAMMAR_ONLY).valid


def test_tool_events_need_a_call_id_when_paired() -> None:
    verdict = check_run([event(S), event(X), event(C), event(D)])
    assert (verdict.first_bad_index, verdict.message) == (1, "event 1: got tool_executing without data.call_id")


def test_bare_types_are_not_paired() -> None:
    assert check_run([S, X, C, D], DEFAULT_RUN_SPEC).valid


def test_parallel_calls_must_all_finish_before_the_terminal_event() -> None:
    run = [event(S), event(X, "a"), event(X, "b"), event(C, "b"), event(D)]
    verdict = check_run(run, PARALLEL)
    assert (verdict.first_bad_index, verdict.got, verdict.expected) == (4, D, (T, X, C))
    assert verdict.message == "event 4: got agent_completed while calls are unfinished (running: 'a')"
    assert check_run([*run[:4], event(C, "a"), event(D)], PARALLEL).valid
    ended = check_run(run[:4], PARALLEL)
    assert (ended.first_bad_index, ended.expected) == (4, (T, X, C))
    assert ended.message == (
        "the run ended after 4 events with calls unfinished (running: 'a'); "
        "expected one of agent_thinking, tool_executing, tool_completed"
    )


def test_a_call_cannot_start_twice_and_a_completion_needs_a_start() -> None:
    again = check_run([event(S), event(X, "a"), event(X, "a")], PARALLEL)
    assert again.message == "event 2: got tool_executing for call 'a', which is already running"
    orphan = check_run([event(S), event(C, "a"), event(D)], PARALLEL)
    assert (orphan.first_bad_index, orphan.expected) == (1, (T, X, D, E))  # no call runs: no completion
    assert orphan.message == "event 1: got tool_completed for call 'a', which is not running"


def pairing_oracle(kinds: Sequence[str], calls: Sequence[str | None]) -> int | None:
    """The first event that breaks call pairing, written the plain way (§5.3 of the notes)."""
    running: set[str | None] = set()
    for i, (kind, call) in enumerate(zip(kinds, calls, strict=True)):
        if kind in (X, C) and call is None:
            return i
        if kind == X:
            if call in running:
                return i
            running.add(call)
        elif kind == C:
            if call not in running:
                return i
            running.discard(call)
        elif kind in (D, E) and running:
            return i
    return len(kinds) if running else None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(EVENT_TYPES), st.sampled_from(["a", "b", None])), max_size=10))
def test_pairing_and_grammar_fail_at_the_first_index_either_fails(run: list[tuple[str, str | None]]) -> None:
    kinds = [kind for kind, _ in run]
    calls = [call for _, call in run]
    grammar = check_run(kinds, RunSpec(PARALLEL.pattern))
    pairing = pairing_oracle(kinds, calls)
    verdict = check_types(kinds, calls, PARALLEL)
    bad = [i for i in (grammar.first_bad_index, pairing) if i is not None]
    assert verdict.first_bad_index == (min(bad) if bad else None)
    assert verdict.valid is (not bad)
    assert check_run([event(k, c) for k, c in run], PARALLEL) == verdict


# -- bad specs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("", "run spec is empty"),
        ("   ", "run spec is empty"),
        ("agent_started (agent_completed", "'(' at 14 is never closed"),
        ("agent_started agent_completed)", "unmatched ')' at 29"),
        ("* agent_started", "'*' at 0 has nothing to repeat"),
        ("agent_started (| +)", "'+' at 17 has nothing to repeat"),
        ("agent_started agent_done", "unknown event type 'agent_done' at 14 (known: agent_started, "),
        ("agent_started & agent_completed", "unexpected character '&' at 14"),
        ("agent_started [agent_completed]", "unexpected character '[' at 14"),
    ],
)
def test_a_bad_pattern_is_refused_with_what_is_wrong(pattern: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        RunSpec(pattern)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"event_types": ()}, "at least one event type"),
        ({"event_types": ("a", "a")}, "more than once"),
        ({"event_types": ("a b",)}, "is not a name"),
        ({"event_types": ("a",), "pairs": (("a", "z"),)}, "'z' (in pairs or terminal) is not one of the event types"),
        ({"event_types": ("a", "b"), "pairs": (("a", "b"),), "terminal": frozenset({"b"})}, "cannot be terminal"),
        ({"event_types": ("a", "b"), "pairs": (("a", "b"), ("a", "b"))}, "at most one pair"),
    ],
)
def test_a_bad_vocabulary_is_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        RunSpec("a", **kwargs)


def test_a_custom_vocabulary_keeps_only_its_own_terminal_types() -> None:
    assert RunSpec("a b", event_types=("a", "b")).terminal == frozenset()
    assert DEFAULT_RUN_SPEC.terminal == {D, E}
    assert RunSpec("a b", event_types=("a", "b"), terminal=frozenset({"b"})).terminal == {"b"}


def test_the_default_spec_is_the_sandbox_grammar_as_a_small_machine() -> None:
    assert DEFAULT_RUN_SPEC.states == 4  # before/after start, inside a tool call, ended
    assert DEFAULT_RUN_SPEC.allowed([]) == (S,)
    assert DEFAULT_RUN_SPEC.allowed([S, X]) == (C,)
    assert DEFAULT_RUN_SPEC.allowed([S, D]) == ()
    assert DEFAULT_RUN_SPEC.allowed([D]) == ()
    assert RunSpec(DEFAULT_RUN_PATTERN, pairs=((X, C),)) == DEFAULT_RUN_SPEC


def test_a_run_the_grammar_accepts_is_still_incomplete_while_a_call_runs() -> None:
    spec = RunSpec("s (x | c)*", event_types=("s", "x", "c"), pairs=(("x", "c"),))
    ev = [{"type": "s"}, {"type": "x", "data": {"call_id": 1}}]
    verdict = check_run(ev, spec)
    assert (verdict.valid, verdict.first_bad_index, verdict.expected) == (False, 2, ("x", "c"))
    assert verdict.message == "the run ended after 2 events with calls unfinished (running: 1); expected one of x, c"
    assert check_run([*ev, {"type": "c", "data": {"call_id": 1}}], spec).valid
