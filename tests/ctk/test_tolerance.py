"""Steady-state tolerances give the same answers as chaostoolkit-lib's, and are validated like it.

Every non-probe row is also run through ``chaoslib.hypothesis.within_tolerance`` (the oracle);
rows where chaoslib crashes instead of answering are listed apart, with what we answer.
"""

from __future__ import annotations

import copy
import importlib
import sys
from collections.abc import Mapping
from typing import Any

import pytest
from chaoslib.exceptions import InvalidActivity
from chaoslib.hypothesis import ensure_hypothesis_tolerance_is_valid
from chaoslib.hypothesis import within_tolerance as chaoslib_within_tolerance

from chaos_service.ctk.tolerance import tolerance_problems, within_tolerance

HTTP_OK = {"status": 200, "headers": {"Content-Type": "text/plain"}, "body": "all good"}
PROCESS_OK = {"status": 0, "stdout": "service ready\n", "stderr": ""}


def http(status: int = 200, body: Any = "") -> dict[str, Any]:
    return {"status": status, "headers": {}, "body": body}


def rng(lo: Any, hi: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "range", "range": [lo, hi], **extra}


def rx(pattern: str, **extra: Any) -> dict[str, Any]:
    return {"type": "regex", "pattern": pattern, **extra}


def jp(path: str, **extra: Any) -> dict[str, Any]:
    return {"type": "jsonpath", "path": path, **extra}


ITEMS = '{"items": [{"id": 1}, {"id": 2}], "state": "up", "none": null}'

# (tolerance, output, expected)
ROWS: list[tuple[Any, Any, bool]] = [
    # booleans: plain equality, never a status
    (True, True, True),
    (False, False, True),
    (True, False, False),
    (True, 1, True),  # 1 == True in Python, and so in chaoslib
    (False, 0, True),
    (True, "true", False),
    (True, {"status": True}, False),
    # integers: the status of an http / process output, else the output
    (200, http(200), True),
    (200, http(503), False),
    (0, PROCESS_OK, True),
    (1, PROCESS_OK, False),
    (42, 42, True),
    (42, 42.0, True),
    (42, "42", False),
    (1, True, True),
    (0, {"body": 0}, False),  # a mapping without status is compared whole
    (200, None, False),
    # strings: equality, no status unwrapping
    ("ok", "ok", True),
    ("ok", "OK", False),
    ("200", {"status": "200"}, False),
    ("200", 200, False),
    ("", "", True),
    # lists of two: membership of a status, else an inclusive range
    ([200, 299], http(250), False),  # not a range when there is a status
    ([200, 299], http(299), True),
    ([4, 9], 6, True),
    ([4, 9], 4, True),
    ([4, 9], 9, True),
    ([4, 9], 10, False),
    ([4, 9], 6.5, True),
    (["a", "m"], "c", True),
    ([0, 1], True, True),
    # other lists: membership
    ([200, 201, 204], http(204), True),
    ([200, 201, 204], http(202), False),
    (["a", "b", "c"], "b", True),
    (["a", "b", "c"], "d", False),
    ([0], 0, True),
    ([5], {"status": 5}, True),
    ([], 0, False),
    # range: Decimal, inclusive, numbers (or numeric text)
    (rng(0, 300), 120, True),
    (rng(0, 300), 300, True),
    (rng(0, 300), 0, True),
    (rng(0, 300), 300.5, False),
    (rng(0, 300), -1, False),
    (rng(0, 300), "12", True),
    (rng(0, 300), " 12\n", True),
    (rng(0, 300), "abc", False),
    (rng(0.1, 0.3), 0.2, True),
    (rng(0.1, 0.3), 0.1, True),
    (rng(0, 5), True, True),
    (rng(0, 300, target="body"), http(200, 120), True),
    (rng(0, 300, target="body"), http(200, "450"), False),
    (rng(0, 300, target="stdout"), {"status": 0, "stdout": "42\n", "stderr": ""}, True),
    # regex: re.search on text, target picks body / stdout
    (rx("^ok"), "ok then", True),
    (rx("^ok"), "not ok", False),
    (rx("ok"), "not ok", True),
    (rx("ready", target="stdout"), PROCESS_OK, True),
    (rx("^ready", target="stdout"), PROCESS_OK, False),
    (rx("good$", target="body"), HTTP_OK, True),
    (rx(r"\d+", target="body"), http(200, "no digits"), False),
    (rx("ok", target=""), "ok", True),  # an empty target is no target
    # jsonpath: ≥1 match, count, expect (scalar or list, winning over count), text decoded as JSON
    (jp("$.status"), {"status": "up"}, True),
    (jp("$.missing"), {"status": "up"}, False),
    (jp("$.items[*]", target="body", count=2), http(200, ITEMS), True),
    (jp("$.items[*]", target="body", count=3), http(200, ITEMS), False),
    (jp("$.missing", count=0), {"a": 1}, True),
    (jp("$.state", target="body", expect="up"), http(200, ITEMS), True),
    (jp("$.state", target="body", expect="down"), http(200, ITEMS), False),
    (jp("$.items[*].id", target="body", expect=[1, 2]), http(200, ITEMS), True),
    (jp("$.items[*].id", target="body", expect=[2, 1]), http(200, ITEMS), False),
    (jp("$.items[*].id", target="body", expect=1), http(200, ITEMS), False),  # two matches ≠ [1]
    (jp("$.items[*].id", target="body", expect=[1, 2], count=5), http(200, ITEMS), True),
    (jp("$.none", expect=None), ITEMS, True),
    (jp("$.missing", expect=None), ITEMS, False),
    (jp("$.a", expect=1), b'{"a": 1}', True),
    (jp("$", expect="plain text"), "plain text", True),  # not JSON: matched as text
    (jp("$.a[*]", target="body", count=3), http(200, {"a": [1, 2, 3]}), True),  # already-decoded body
    (jp("$.items[*][?(@.id > 1)]", count=1), ITEMS, True),
    (jp("$.items[?(@.id > 1)]"), ITEMS, False),  # jsonpath2 filters the node itself: [*] first
    (jp("  $.state  ", expect="up"), ITEMS, True),
    (jp("$.a", target="stdout", expect=5), {"status": 0, "stdout": '{"a": 5}', "stderr": ""}, True),
]


def chaoslib_answer(tolerance: Any, output: Any) -> Any:
    try:
        return chaoslib_within_tolerance(copy.deepcopy(tolerance), copy.deepcopy(output))
    except Exception as exc:  # the oracle crashing is reported, not hidden
        return exc


@pytest.mark.parametrize(("tolerance", "output", "expected"), ROWS)
def test_within_tolerance_agrees_with_chaoslib(tolerance: Any, output: Any, expected: bool) -> None:
    before = copy.deepcopy((tolerance, output))
    answer = within_tolerance(tolerance, output)
    assert answer is expected
    assert (tolerance, output) == before  # nothing is modified
    assert chaoslib_answer(tolerance, output) == expected


# Where chaoslib raises (and the Chaos Toolkit run crashes), the tolerance is simply not met here —
# except a target on a non-mapping output, where the whole output is tested (chaoslib's own fallback
# when the key is missing).
# (tolerance, output, our answer, chaoslib's exception)
DIVERGENT: list[tuple[Any, Any, bool, type[Exception]]] = [
    ([4, 9], {"body": 5}, False, TypeError),  # 2-list range over a mapping without status
    ([4, 9], "5", False, TypeError),
    ([4, 9], None, False, TypeError),
    (rng(0, 300), None, False, TypeError),
    (rng(0, 300, target="body"), {"status": 200}, False, TypeError),  # no body: the whole dict
    (rng(0, 300), [1, 2], False, ValueError),
    (rng(0, 300), "NaN", False, ArithmeticError),  # decimal.InvalidOperation, raised by the comparison
    (rx("4"), 42, False, TypeError),
    (rx("ok"), b"ok", False, TypeError),
    (rx("ok"), HTTP_OK, False, TypeError),  # regex over an http output without target
    (rx("ok", target="body"), {"status": 200}, False, TypeError),
    (rx("ok", target="body"), "ok", True, AttributeError),
    (jp("$.a", target="body", expect=1), '{"a": 1}', True, AttributeError),
    (rng(0, 10, target="body"), "5", True, AttributeError),
    (jp("$.a", count=1), b'\xff{"a": 1}', False, UnicodeDecodeError),
]


@pytest.mark.parametrize(("tolerance", "output", "expected", "crash"), DIVERGENT)
def test_where_chaoslib_crashes_we_answer(tolerance: Any, output: Any, expected: bool, crash: type[Exception]) -> None:
    assert within_tolerance(tolerance, output) is expected
    assert isinstance(chaoslib_answer(tolerance, output), crash)


@pytest.mark.parametrize(
    ("tolerance", "chaoslib_says"),
    [(1.5, None), (None, None), ({"type": "nope"}, None), ({}, None), (rng(0, None), TypeError)],
)
def test_invalid_tolerance_raises(tolerance: Any, chaoslib_says: Any) -> None:
    """chaoslib answers None (falsy) or crashes on a tolerance its validator refuses; we refuse it."""
    with pytest.raises(ValueError, match="invalid tolerance"):
        within_tolerance(tolerance, 1.5)
    answer = chaoslib_answer(tolerance, 1.5)
    assert answer is None if chaoslib_says is None else isinstance(answer, chaoslib_says)


# --- probe tolerances: the caller runs the probe; here a python runner, and chaoslib itself as oracle


def is_positive(value: Any, minimum: int = 0) -> bool:
    """A tolerance probe function, imported by chaoslib and by the runner below."""
    return bool(value > minimum)


def broken(value: Any) -> bool:
    raise RuntimeError("probe crashed")


def python_probe(func: str, **arguments: Any) -> dict[str, Any]:
    """A python tolerance probe as Chaos Toolkit wants it: ``value`` among the arguments.

    chaoslib's validator binds the arguments to the function without the output, so a required
    ``value`` parameter must be declared; the hypothesis then overwrites it with the output.
    """
    return {
        "type": "probe",
        "name": f"check-{func}",
        "provider": {"type": "python", "module": __name__, "func": func, "arguments": {"value": None, **arguments}},
    }


def run_python_probe(tolerance: Mapping[str, Any], value: Any) -> bool:
    """What a runner does: the provider's function with ``value`` added; a failure is not met."""
    provider = tolerance["provider"]
    function = getattr(importlib.import_module(provider["module"]), provider["func"])
    try:
        return bool(function(**{**provider.get("arguments", {}), "value": value}))
    except Exception:
        return False


@pytest.mark.parametrize(
    ("tolerance", "output", "expected"),
    [
        (python_probe("is_positive"), 3, True),
        (python_probe("is_positive"), -3, False),
        (python_probe("is_positive", minimum=5), 3, False),
        (python_probe("broken"), 3, False),
    ],
)
def test_probe_tolerance_is_run_by_the_caller(tolerance: dict[str, Any], output: Any, expected: bool) -> None:
    calls: list[tuple[Mapping[str, Any], Any]] = []

    def run_probe(activity: Mapping[str, Any], value: Any) -> bool:
        calls.append((activity, value))
        return run_python_probe(activity, value)

    assert within_tolerance(tolerance, output, run_probe) is expected
    assert calls == [(tolerance, output)]
    assert chaoslib_answer(tolerance, output) is expected


def test_probe_tolerance_without_a_runner_raises() -> None:
    with pytest.raises(ValueError, match="check-is_positive"):
        within_tolerance(python_probe("is_positive"), 3)


# --- validation, against chaoslib's ensure_hypothesis_tolerance_is_valid

PROBE = python_probe("is_positive")
HTTP_PROBE = {"type": "probe", "name": "h", "provider": {"type": "http", "url": "http://localhost/health"}}
PROCESS_PROBE = {"type": "probe", "name": "p", "provider": {"type": "process", "path": sys.executable}}

# (tolerance, expected problem fragments; empty when valid)
VALIDATION: list[tuple[Any, list[str]]] = [
    (True, []),
    (200, []),
    ("ok", []),
    ([1, 2], []),
    ([1, 2, 3], []),
    ([], []),
    (rx("^a.*b$"), []),
    (jp("$.items[*].id"), []),
    (jp("  $.a  "), []),
    (rng(0, 1), []),
    (rng(0.5, 1e3), []),
    (PROBE, []),
    (HTTP_PROBE, []),
    (PROCESS_PROBE, []),
    ({**PROBE, "pauses": {"before": 1, "after": "${wait}"}, "timeout": 3, "background": False}, []),
    (1.5, ["must be a boolean, an integer, a string, a list or a mapping, not float"]),
    (None, ["not NoneType"]),
    ({"type": "nope"}, ["tolerance type 'nope' is not supported"]),
    ({}, ["tolerance type None is not supported"]),
    ({"type": "regex"}, ["needs a 'pattern'"]),
    (rx("("), ["does not compile"]),
    ({"type": "regex", "pattern": None}, ["must be text, not NoneType"]),
    ({"type": "jsonpath"}, ["needs a 'path'"]),
    (jp(""), ["cannot be empty"]),
    (jp("   "), ["cannot be empty"]),
    (jp("items"), ["'items' is invalid"]),
    (jp("$["), ["'$[' is invalid"]),
    ({"type": "range"}, ["needs a 'range'"]),
    ({"type": "range", "range": "0-10"}, ["must be a list"]),
    ({"type": "range", "range": [1]}, ["two values"]),
    ({"type": "range", "range": [1, 2, 3]}, ["two values"]),
    (rng("a", 2), ["lower bound must be a number, not 'a'"]),
    (rng("a", None), ["lower bound must be a number", "upper bound must be a number, not None"]),
    ({**PROBE, "name": ""}, ["must have a name"]),
    ({"type": "probe", "name": "x"}, ["inline provider"]),
    ({"type": "probe", "provider": {}}, ["must have a name", "inline provider"]),
    ({"type": "probe", "name": "", "provider": {"type": "sql"}}, ["must have a name", "provider type 'sql'"]),
    ({**PROBE, "provider": {"type": "ruby"}}, ["provider type 'ruby' is unknown"]),
    ({**PROBE, "provider": {"type": "python", "module": "m"}}, ["needs a 'func'"]),
    ({**PROBE, "provider": {"type": "http"}}, ["needs a 'url'"]),
    ({**PROBE, "provider": {"type": "http", "url": "http://x", "headers": ["a"]}}, ["headers must be a mapping"]),
    ({**PROBE, "provider": {"type": "process"}}, ["needs a 'path'"]),
    ({**PROBE, "timeout": "3s"}, ["timeout must be a number"]),
    ({**PROBE, "pauses": {"before": "5s"}}, ["before pause must be a number or a ${name}"]),
    ({**PROBE, "background": "yes"}, ["background must be a boolean"]),
]


def chaoslib_valid(tolerance: Any) -> bool:
    try:
        ensure_hypothesis_tolerance_is_valid(copy.deepcopy(tolerance))
    except InvalidActivity:
        return False
    return True


@pytest.mark.parametrize(("tolerance", "fragments"), VALIDATION)
def test_tolerance_problems_agree_with_chaoslib(
    tolerance: Any, fragments: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    problems = tolerance_problems(tolerance)
    assert len(problems) == len(fragments), problems
    for problem, fragment in zip(problems, fragments, strict=True):
        assert fragment in problem
    assert chaoslib_valid(tolerance) == (not fragments)
    if not fragments:
        assert within_tolerance(tolerance, 1, lambda activity, value: True) in (True, False)  # it evaluates
    capsys.readouterr()  # chaoslib's jsonpath2 parse prints syntax errors; ours must not (next test)


def test_an_invalid_json_path_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert tolerance_problems(jp("$.a[")) != []
    assert capsys.readouterr() == ("", "")


# Stricter than chaoslib: shapes its validator lets through (True) or crashes on (an exception),
# and the hypothesis then crashes on.
STRICTER: list[tuple[Any, str, bool | type[Exception]]] = [
    ({"type": "probe", "ref": "another-probe"}, "cannot be a 'ref'", True),
    ({**PROBE, "provider": {**PROBE["provider"], "arguments": [1]}}, "arguments must be a mapping", TypeError),
    ({**PROBE, "pauses": {"after": [1]}}, "after pause must be a number", True),
    ({"type": "regex", "pattern": b"ok"}, "must be text, not bytes", True),
]


@pytest.mark.parametrize(("tolerance", "fragment", "chaoslib_says"), STRICTER)
def test_stricter_than_chaoslib(tolerance: Any, fragment: str, chaoslib_says: bool | type[Exception]) -> None:
    [problem] = tolerance_problems(tolerance)
    assert fragment in problem
    if chaoslib_says is True:
        assert chaoslib_valid(tolerance)
    else:
        with pytest.raises(chaoslib_says):
            chaoslib_valid(tolerance)


def test_a_json_path_that_is_not_text_is_a_problem_where_chaoslib_crashes() -> None:
    tolerance = {"type": "jsonpath", "path": 5}
    assert tolerance_problems(tolerance) == ["a jsonpath tolerance's path must be text, not int"]
    with pytest.raises(AttributeError):
        ensure_hypothesis_tolerance_is_valid(tolerance)
