"""Per-run sequence validation: a run's events against a regular grammar over event types.

A `RunSpec` is written as a regular expression whose symbols are event type names,
separated by whitespace, with the operators ``*``, ``+``, ``?``, ``|`` and parentheses::

    agent_started agent_thinking* (tool_executing tool_completed agent_thinking*)* (agent_completed | agent_error)

It compiles into a deterministic state machine (one symbol per event type), kept only
over the states from which an accepting state is still reachable, so the first event
that cannot lead to a valid run is found at once, with the event types that could have
come there instead. A spec may also pair events by ``data.call_id``: a completion must
close a call that is running, and a terminal event may not leave calls unfinished.

`check_run` returns a `SequenceVerdict`; it never raises for a bad run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import interegular

from chaos_service.errors import InvalidInput
from chaos_service.sandbox.chat.events import (
    AGENT_COMPLETED,
    AGENT_ERROR,
    AGENT_STARTED,
    AGENT_THINKING,
    EVENT_TYPES,
    TERMINAL,
    TOOL_COMPLETED,
    TOOL_EXECUTING,
)

__all__ = [
    "DEFAULT_RUN_PATTERN",
    "DEFAULT_RUN_SPEC",
    "EventLike",
    "RunSpec",
    "SequenceVerdict",
    "check_run",
    "check_types",
    "event_fields",
]

#: The sandbox's run grammar (`chaos_service.sandbox.chat.events.RUN_GRAMMAR`), written with names.
DEFAULT_RUN_PATTERN = (
    f"{AGENT_STARTED} {AGENT_THINKING}* ({TOOL_EXECUTING} {TOOL_COMPLETED} {AGENT_THINKING}*)* "
    f"({AGENT_COMPLETED} | {AGENT_ERROR})"
)

_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z0-9_.:\-]+)|(?P<op>[*+?|()])|(?P<bad>\S))")
_NAME = re.compile(r"[A-Za-z0-9_.:\-]+")


def _symbol(index: int) -> str:
    """The one-character symbol standing for the ``index``-th event type (letters, then CJK ideographs)."""
    if index < 26:
        return chr(ord("A") + index)
    if index < 52:
        return chr(ord("a") + index - 26)
    return chr(0x4E00 + index - 52)


class _Parser:
    """Checks a pattern's structure and translates it to a regular expression over symbols."""

    def __init__(self, pattern: str, symbols: Mapping[str, str]) -> None:
        self.pattern = pattern
        self.symbols = symbols
        self.tokens: list[tuple[str, str, int]] = []  # (kind, text, position)
        for match in _TOKEN.finditer(pattern):
            kind = match.lastgroup
            if kind is None:  # trailing whitespace
                continue
            if kind == "bad":
                raise InvalidInput(
                    f"run spec {pattern!r}: unexpected character {match['bad']!r} at {match.start('bad')}"
                )
            self.tokens.append((kind, match[kind], match.start(kind)))
        self.pos = 0

    def parse(self) -> str:
        if not self.tokens:
            raise InvalidInput("run spec is empty: write at least one event type")
        regex = self._alternation()
        if self.pos < len(self.tokens):
            _, text, at = self.tokens[self.pos]
            raise InvalidInput(f"run spec {self.pattern!r}: unmatched {text!r} at {at}")
        return regex

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _alternation(self) -> str:
        branches = [self._concatenation()]
        while (token := self._peek()) is not None and token[1] == "|":
            self.pos += 1
            branches.append(self._concatenation())
        return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"

    def _concatenation(self) -> str:
        parts: list[str] = []
        while (token := self._peek()) is not None and token[1] not in ("|", ")"):
            parts.append(self._repetition())
        return "".join(parts)

    def _repetition(self) -> str:
        kind, text, at = self.tokens[self.pos]
        if kind == "op" and text in "*+?":
            raise InvalidInput(f"run spec {self.pattern!r}: {text!r} at {at} has nothing to repeat")
        atom = self._atom()
        while (token := self._peek()) is not None and token[1] in ("*", "+", "?"):
            self.pos += 1
            atom = f"(?:{atom}){token[1]}"
        return atom

    def _atom(self) -> str:
        kind, text, at = self.tokens[self.pos]
        self.pos += 1
        if kind == "name":
            if text not in self.symbols:
                known = ", ".join(self.symbols)
                raise InvalidInput(f"run spec {self.pattern!r}: unknown event type {text!r} at {at} (known: {known})")
            return self.symbols[text]
        # kind == "op" and text == "(": ")" and "|" never start an atom (see _concatenation)
        inner = self._alternation()
        closing = self._peek()
        if closing is None or closing[1] != ")":
            raise InvalidInput(f"run spec {self.pattern!r}: '(' at {at} is never closed")
        self.pos += 1
        return f"(?:{inner})"


@dataclass(frozen=True)
class RunSpec:
    """The events a run may consist of, in order, and optionally how its events pair up.

    ``event_types`` is the vocabulary, in the order used to list expected types; a
    pattern may name only these. ``pairs`` maps a start type to its completion type
    (e.g. ``tool_executing`` → ``tool_completed``), matched by ``data[call_key]``;
    ``terminal`` types may not arrive while a paired call is unfinished; they default to
    the sandbox's terminal types that are in the vocabulary, and also tell the delivery
    checker when a run is complete.
    """

    pattern: str = DEFAULT_RUN_PATTERN
    event_types: tuple[str, ...] = EVENT_TYPES
    pairs: tuple[tuple[str, str], ...] = ()
    terminal: frozenset[str] = TERMINAL
    call_key: str = "call_id"
    _delta: tuple[dict[str, int], ...] = field(init=False, repr=False, compare=False)
    _accepting: frozenset[int] = field(init=False, repr=False, compare=False)
    _starts: dict[str, str] = field(init=False, repr=False, compare=False)  # start type -> completion type
    _ends: dict[str, str] = field(init=False, repr=False, compare=False)  # completion type -> start type

    def __post_init__(self) -> None:
        object.__setattr__(self, "event_types", tuple(self.event_types))
        object.__setattr__(self, "pairs", tuple((str(a), str(b)) for a, b in self.pairs))
        terminal = self.terminal
        if terminal is TERMINAL:  # the default: the sandbox's terminal types that are in the vocabulary
            terminal = TERMINAL & set(self.event_types)
        object.__setattr__(self, "terminal", frozenset(terminal))
        if not self.event_types:
            raise InvalidInput("a run spec needs at least one event type")
        for name in self.event_types:
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise InvalidInput(f"event type {name!r} is not a name (letters, digits and _ . : -)")
        if len(set(self.event_types)) != len(self.event_types):
            raise InvalidInput("event types are listed more than once")
        known = set(self.event_types)
        paired = [name for pair in self.pairs for name in pair]
        for name in [*paired, *sorted(self.terminal)]:
            if name not in known:
                raise InvalidInput(f"run spec: {name!r} (in pairs or terminal) is not one of the event types")
        if len(set(paired)) != len(paired):
            raise InvalidInput("run spec: an event type may be in at most one pair, once")
        if set(paired) & self.terminal:
            raise InvalidInput("run spec: a paired event type cannot be terminal")
        symbols = {name: _symbol(i) for i, name in enumerate(self.event_types)}
        regex = _Parser(self.pattern, symbols).parse()
        delta, accepting = _compile(regex, symbols)
        object.__setattr__(self, "_delta", delta)
        object.__setattr__(self, "_accepting", accepting)
        object.__setattr__(self, "_starts", dict(self.pairs))
        object.__setattr__(self, "_ends", {end: start for start, end in self.pairs})

    @property
    def states(self) -> int:
        """The number of live states of the compiled machine (state 0 is the initial one)."""
        return len(self._delta)

    def accepts(self, types: Iterable[str]) -> bool:
        """Whether these event types, in order, form a complete run (the grammar only, no pairing)."""
        return check_run(list(types), self).valid

    def allowed(self, types: Iterable[str]) -> tuple[str, ...]:
        """The event types that may follow this prefix (the grammar only), in vocabulary order."""
        state = 0
        for kind in types:
            nxt = self._delta[state].get(kind)
            if nxt is None:
                return ()
            state = nxt
        return self._next(state)

    def _next(self, state: int) -> tuple[str, ...]:
        nxt = self._delta[state]
        return tuple(name for name in self.event_types if name in nxt)


def _compile(regex: str, symbols: Mapping[str, str]) -> tuple[tuple[dict[str, int], ...], frozenset[int]]:
    """The live part of the minimal DFA for ``regex``, states renumbered breadth-first from 0."""
    fsm: Any = interegular.parse_pattern(regex).to_fsm()
    fsm = fsm.reduce()
    keys = {name: fsm.alphabet[symbol] for name, symbol in symbols.items()}
    fsm_map: Mapping[Any, Mapping[Any, Any]] = fsm.map
    finals = set(fsm.finals)
    # live = can still reach an accepting state; computed backwards from the finals
    backwards: dict[Any, set[Any]] = {}
    for source, moves in fsm_map.items():
        for target in moves.values():
            backwards.setdefault(target, set()).add(source)
    live, frontier = set(finals), list(finals)
    while frontier:
        for source in backwards.get(frontier.pop(), ()):
            if source not in live:
                live.add(source)
                frontier.append(source)
    if fsm.initial not in live:
        raise InvalidInput("run spec matches no run at all")
    number = {fsm.initial: 0}
    order = [fsm.initial]
    delta: list[dict[str, int]] = []
    for state in order:  # grows while iterating: breadth-first numbering
        moves = fsm_map.get(state, {})
        row: dict[str, int] = {}
        for name, key in keys.items():
            target = moves.get(key) if key is not None else None
            if target is None or target not in live:
                continue
            if target not in number:
                number[target] = len(order)
                order.append(target)
            row[name] = number[target]
        delta.append(row)
    return tuple(delta), frozenset(number[s] for s in order if s in finals)


#: The sandbox's runs: its grammar, with tool calls paired by ``data.call_id``.
DEFAULT_RUN_SPEC = RunSpec(DEFAULT_RUN_PATTERN, pairs=((TOOL_EXECUTING, TOOL_COMPLETED),))


@dataclass(frozen=True)
class SequenceVerdict:
    """Whether one run's events form a valid run, and if not, where and why.

    ``first_bad_index`` is the index of the first event that cannot be part of a valid
    run, or ``len(events)`` when every event fits but the run is incomplete. ``expected``
    lists (in the spec's vocabulary order) the event types acceptable there; ``got`` is
    the type found there (``None`` at the end).
    """

    valid: bool
    first_bad_index: int | None
    expected: tuple[str, ...]
    got: str | None
    message: str


EventLike = Any  # an event type name, a wire-shaped mapping, or an object with `type` and `data`


def event_fields(event: EventLike, call_key: str = "call_id") -> tuple[str, Any]:
    """An event's type and ``data[call_key]`` (``None`` if absent), from a type name, a mapping or an object."""
    if isinstance(event, str):
        return event, None
    if isinstance(event, Mapping):
        kind, data = event.get("type"), event.get("data")
    else:
        kind, data = getattr(event, "type", None), getattr(event, "data", None)
    call = data.get(call_key) if isinstance(data, Mapping) else None
    return (kind if isinstance(kind, str) else "<missing>" if kind is None else repr(kind)), call


def check_run(events: Iterable[EventLike], spec: RunSpec = DEFAULT_RUN_SPEC) -> SequenceVerdict:
    """Check one run's events, in the order given, against ``spec``.

    Events are type names, mappings shaped like the wire JSON, or objects with ``type``
    and ``data`` (e.g. `RunEvent`). Pairing by call id applies unless every event is a
    bare type name (which carries no call id).
    """
    types: list[str] = []
    calls: list[Any] | None = [] if spec.pairs else None
    bare = True
    for event in events:
        kind, call = event_fields(event, spec.call_key)
        bare = bare and isinstance(event, str)
        types.append(kind)
        if calls is not None:
            calls.append(call)
    return check_types(types, None if bare else calls, spec)


def check_types(types: Sequence[str], calls: Sequence[Any] | None, spec: RunSpec = DEFAULT_RUN_SPEC) -> SequenceVerdict:
    """`check_run` on pre-extracted event types and, when pairing applies, their call ids (else ``None``)."""
    delta = spec._delta
    state = 0
    if calls is None or not spec.pairs:
        for index, kind in enumerate(types):
            nxt = delta[state].get(kind)
            if nxt is None:
                return _reject(spec, index, kind, state, None, None)
            state = nxt
        if state in spec._accepting:
            return _accept(len(types))
        return _reject(spec, len(types), None, state, None, None)
    starts, ends, terminal = spec._starts, spec._ends, spec.terminal
    running: dict[tuple[str, Any], None] = {}  # (start type, call id), in start order
    for index, kind in enumerate(types):
        nxt = delta[state].get(kind)
        if nxt is None:
            return _reject(spec, index, kind, state, running, None)
        if kind in starts or kind in ends:
            call = calls[index]
            if call is None:
                return _reject(spec, index, kind, state, running, f"without data.{spec.call_key}")
            if kind in starts:
                if (kind, call) in running:
                    return _reject(spec, index, kind, state, running, f"for call {call!r}, which is already running")
                running[(kind, call)] = None
            elif (ends[kind], call) in running:
                del running[(ends[kind], call)]
            else:
                return _reject(
                    spec, index, kind, state, running, f"for call {call!r}, which is not running{_running(running)}"
                )
        elif kind in terminal and running:
            return _reject(spec, index, kind, state, running, f"while calls are unfinished{_running(running)}")
        state = nxt
    if state in spec._accepting and not running:
        return _accept(len(types))
    return _reject(spec, len(types), None, state, running, None)


def _accept(length: int) -> SequenceVerdict:
    return SequenceVerdict(True, None, (), None, f"a valid run of {length} event{'s' if length != 1 else ''}")


def _running(running: Mapping[tuple[str, Any], None]) -> str:
    return " (running: " + ", ".join(repr(call) for _, call in running) + ")" if running else ""


def _reject(
    spec: RunSpec,
    index: int,
    got: str | None,
    state: int,
    running: Mapping[tuple[str, Any], None] | None,
    pairing: str | None,
) -> SequenceVerdict:
    """A failed verdict at ``index``; ``pairing`` says what is wrong with a call id (else the grammar failed)."""
    expected = spec._next(state)
    if running is not None:  # pairing: what could still pair up (a completion needs a running call)
        open_starts = {start for start, _ in running}
        expected = tuple(
            kind
            for kind in expected
            if not (kind in spec._ends and spec._ends[kind] not in open_starts)
            and not (kind in spec.terminal and running)
        )
    if got is None:
        if index == 0:
            where = "the run has no events"
        else:
            where = f"the run ended after {index} event{'s' if index != 1 else ''}"
        if running:
            where += f" with calls unfinished{_running(running)}"
        message = f"{where}; expected {_listing(expected)}"
    else:
        if pairing is not None:
            message = f"event {index}: got {got} {pairing}"
        elif got in spec.event_types:
            message = f"event {index}: got {got}, expected {_listing(expected)}"
        else:
            message = f"event {index}: got unknown event type {got!r}, expected {_listing(expected)}"
    return SequenceVerdict(False, index, expected, got, message)


def _listing(expected: Sequence[str]) -> str:
    if not expected:
        return "no further event"
    if len(expected) == 1:
        return expected[0]
    return "one of " + ", ".join(expected)
