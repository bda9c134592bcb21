"""Chaos Toolkit steady-state tolerances: whether a probe's output is acceptable, and whether a tolerance is valid.

The rules are chaostoolkit-lib's (``chaoslib.hypothesis``). The tolerance's Python type decides:

* ``true`` / ``false``: the output equals it (``1 == True``, as in Python);
* an integer: the output's ``status`` when the output is a mapping carrying one (http and
  process outputs), else the output itself, equals it;
* a string: the output equals it (no ``status`` unwrapping);
* a list of exactly two items: membership of the ``status`` when the output has one (so
  ``[200, 299]`` means 200 or 299), else the inclusive range ``lo <= output <= hi``;
* any other list: membership of the ``status`` when present, else of the output;
* ``{type: range, range: [lo, hi], target?}``: the value, read as a ``Decimal``, lies in the
  inclusive range; a non-numeric value is out of range;
* ``{type: regex, pattern, target?}``: ``re.search`` finds the pattern in the (text) value;
* ``{type: jsonpath, path, expect?, count?, target?}``: text or bytes are decoded as JSON
  first; passes with at least one match, or exactly ``count`` matches, or matches equal to
  ``[expect]`` (scalar) / ``expect`` (list), ``expect`` winning over ``count``;
* ``{type: probe, ...}``: another probe, run with the output as its ``value`` argument.

``target`` names the key of a mapping output to test (``body`` for http, ``stdout`` for a
process); when the output has no such key, or is not a mapping, the whole output is tested.

Where chaostoolkit-lib crashes the run on an output the tolerance cannot handle (a regex over a
number, a range over ``None``, a 2-list range over a dict without ``status``), the tolerance is
simply not met here. A tolerance that fails validation raises ``ValueError``.

Chaos Toolkit substitutes ``${name}`` in a string tolerance, a regex ``pattern`` and a jsonpath
``path`` / ``expect`` before evaluating; the caller does that here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from contextlib import suppress
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from numbers import Number
from typing import Any

import jsonpath2.parser as jsonpath_parser
from jsonpath2.path import Path as JSONPath

__all__ = ["tolerance_problems", "within_tolerance"]

TOLERANCE_TYPES = ("probe", "regex", "jsonpath", "range")
PROVIDER_TYPES = ("python", "process", "http")

#: Runs a probe tolerance: (the tolerance activity, the output to check) → met or not.
RunProbe = Callable[[Mapping[str, Any], Any], bool]


def within_tolerance(tolerance: Any, output: Any, run_probe: RunProbe | None = None) -> bool:
    """Whether ``output`` satisfies ``tolerance``, by Chaos Toolkit's rules (see the module docstring).

    A ``{type: probe}`` tolerance is delegated to ``run_probe(tolerance, output)``: the caller runs
    the tolerance's provider with ``output`` added as the argument ``value`` and says whether it
    returned something truthy (a failing provider means not met). Raises ``ValueError`` when the
    tolerance is invalid (see ``tolerance_problems``) or is a probe and ``run_probe`` is None.
    """
    problems = tolerance_problems(tolerance)
    if problems:
        raise ValueError("invalid tolerance: " + "; ".join(problems))
    # bool before int: True is an int, but chaoslib dispatches bool tolerances to plain equality.
    if isinstance(tolerance, bool | str):
        return bool(output == tolerance)
    if isinstance(tolerance, int):
        return bool(_status_or_output(output) == tolerance)
    if isinstance(tolerance, list):
        return _within_list(tolerance, output)
    kind = tolerance["type"]
    if kind == "probe":
        if run_probe is None:
            raise ValueError(f"probe tolerance {tolerance.get('name')!r} needs a way to run probes")
        return bool(run_probe(tolerance, output))
    value = _target(output, tolerance.get("target"))
    if kind == "regex":
        return isinstance(value, str) and re.search(tolerance["pattern"], value) is not None
    if kind == "jsonpath":
        return _within_jsonpath(tolerance, value)
    return _within_range(tolerance["range"], value)


def tolerance_problems(tolerance: Any) -> list[str]:
    """Why ``tolerance`` is not a valid Chaos Toolkit tolerance; empty when it is.

    The checks are chaostoolkit-lib's ``ensure_hypothesis_tolerance_is_valid``: a bool, an int,
    a string, a list or a mapping; a mapping's ``type`` one of probe / regex / jsonpath / range;
    a regex ``pattern`` that compiles; a jsonpath ``path`` that parses; a ``range`` of two numbers;
    a probe tolerance shaped like a probe activity (a name and an inline python, process or http
    provider). Whether a python module imports or a process exists is not checked here.
    """
    if not isinstance(tolerance, bool | int | str | list | Mapping):
        return [
            f"a tolerance must be a boolean, an integer, a string, a list or a mapping, not {type(tolerance).__name__}"
        ]
    if not isinstance(tolerance, Mapping):
        return []
    kind = tolerance.get("type")
    if kind == "probe":
        return _probe_problems(tolerance)
    if kind == "regex":
        return _regex_problems(tolerance)
    if kind == "jsonpath":
        return _jsonpath_problems(tolerance)
    if kind == "range":
        return _range_problems(tolerance)
    return [f"tolerance type {kind!r} is not supported (use one of {', '.join(TOLERANCE_TYPES)})"]


def _status_or_output(output: Any) -> Any:
    if isinstance(output, Mapping) and "status" in output:
        return output["status"]
    return output


def _within_list(tolerance: list[Any], output: Any) -> bool:
    if isinstance(output, Mapping) and "status" in output:
        return output["status"] in tolerance
    if len(tolerance) == 2:
        try:
            return bool(tolerance[0] <= output <= tolerance[1])
        except TypeError:  # not comparable (e.g. a number range over text): out of range
            return False
    return output in tolerance


def _target(output: Any, target: Any) -> Any:
    if target and isinstance(output, Mapping):
        return output.get(target, output)
    return output


def _within_jsonpath(tolerance: Mapping[str, Any], value: Any) -> bool:
    if isinstance(value, bytes):
        with suppress(UnicodeDecodeError):  # undecodable bytes stay bytes: nothing below the root matches
            value = value.decode("utf-8")
    if isinstance(value, str):
        with suppress(json.JSONDecodeError):  # plain text: only the root path matches it
            value = json.loads(value)
    matches = [match.current_value for match in _parse_path(tolerance["path"].strip()).match(value)]
    if "expect" in tolerance:
        expect = tolerance["expect"]
        return matches == (expect if isinstance(expect, list) else [expect])
    count = tolerance.get("count")
    if count is not None:
        return bool(len(matches) == count)
    return len(matches) > 0


def _within_range(bounds: list[Any], value: Any) -> bool:
    try:
        number = Decimal(value)
        return Decimal(bounds[0]) <= number <= Decimal(bounds[1])
    except (InvalidOperation, TypeError, ValueError):  # not a number, or NaN: out of range
        return False


def _regex_problems(tolerance: Mapping[str, Any]) -> list[str]:
    if "pattern" not in tolerance:
        return ["a regex tolerance needs a 'pattern'"]
    pattern = tolerance["pattern"]
    if not isinstance(pattern, str):
        return [f"a regex tolerance's pattern must be text, not {type(pattern).__name__}"]
    try:
        re.compile(pattern)
    except re.error as exc:
        return [f"the regex tolerance's pattern {pattern!r} does not compile: {exc}"]
    return []


def _jsonpath_problems(tolerance: Mapping[str, Any]) -> list[str]:
    if "path" not in tolerance:
        return ["a jsonpath tolerance needs a 'path'"]
    path = tolerance["path"]
    if not isinstance(path, str):
        return [f"a jsonpath tolerance's path must be text, not {type(path).__name__}"]
    if not path.strip():
        return ["a jsonpath tolerance's path cannot be empty"]
    try:
        _parse_path(path.strip())
    except (ValueError, TypeError) as exc:
        return [f"the jsonpath tolerance's path {path!r} is invalid: {exc}"]
    return []


def _range_problems(tolerance: Mapping[str, Any]) -> list[str]:
    if "range" not in tolerance:
        return ["a range tolerance needs a 'range'"]
    bounds = tolerance["range"]
    if not isinstance(bounds, list):
        return [f"a range tolerance's range must be a list [lower, upper], not {type(bounds).__name__}"]
    if len(bounds) != 2:
        return [f"a range tolerance's range must have two values [lower, upper], not {len(bounds)}"]
    return [
        f"a range tolerance's {which} bound must be a number, not {bound!r}"
        for which, bound in zip(("lower", "upper"), bounds, strict=True)
        if not isinstance(bound, Number)
    ]


def _probe_problems(tolerance: Mapping[str, Any]) -> list[str]:
    if "ref" in tolerance and "provider" not in tolerance:
        # chaoslib's validator accepts a ref here, then the hypothesis crashes on it
        return ["a probe tolerance cannot be a 'ref': write the probe out, with its provider"]
    problems: list[str] = []
    if not tolerance.get("name"):
        problems.append("a probe tolerance must have a name")
    provider = tolerance.get("provider")
    if not isinstance(provider, Mapping) or not provider:
        problems.append("a probe tolerance needs an inline provider (a mapping with a type)")
    else:
        problems += _provider_problems(provider)
    timeout = tolerance.get("timeout")
    if timeout is not None and not isinstance(timeout, Number):
        problems.append("a probe tolerance's timeout must be a number")
    pauses = tolerance.get("pauses")
    if pauses is not None:
        if not isinstance(pauses, Mapping):
            problems.append("a probe tolerance's pauses must be a mapping with before/after")
        else:
            for when in ("before", "after"):
                pause = pauses.get(when)
                if pause is None or (isinstance(pause, Number) and not isinstance(pause, bool)):
                    continue
                if not (isinstance(pause, str) and pause.startswith("${") and pause.endswith("}")):
                    problems.append(f"a probe tolerance's {when} pause must be a number or a ${{name}} reference")
    if "background" in tolerance and not isinstance(tolerance["background"], bool):
        problems.append("a probe tolerance's background must be a boolean")
    return problems


def _provider_problems(provider: Mapping[str, Any]) -> list[str]:
    kind = provider.get("type")
    if not kind:
        return ["a probe tolerance's provider must have a type"]
    if kind not in PROVIDER_TYPES:
        return [f"a probe tolerance's provider type {kind!r} is unknown (use one of {', '.join(PROVIDER_TYPES)})"]
    problems: list[str] = []
    if kind == "python":
        problems += [f"a python provider needs a '{key}'" for key in ("module", "func") if not provider.get(key)]
    elif kind == "process" and not provider.get("path"):
        problems.append("a process provider needs a 'path'")
    elif kind == "http":
        if not provider.get("url"):
            problems.append("an http provider needs a 'url'")
        if provider.get("headers") and not isinstance(provider["headers"], Mapping):
            problems.append("an http provider's headers must be a mapping")
    arguments = provider.get("arguments")
    if kind != "process" and arguments is not None and not isinstance(arguments, Mapping):
        problems.append(f"a {kind} provider's arguments must be a mapping")
    return problems


@lru_cache(maxsize=256)
def _parse_path(path: str) -> Any:
    """The parsed JSON path, as ``jsonpath2.path.Path.parse_str`` gives it; ``ValueError`` when invalid.

    jsonpath2 leaves ANTLR's console listener on its lexer and parser, which prints every syntax
    error to stderr before jsonpath2's own listener raises it; the same parse is done here with
    only the raising listener. Should jsonpath2's internals change, its public parser is used.
    """
    try:
        antlr4 = jsonpath_parser.antlr4
        raising = jsonpath_parser._ConsoleErrorListener()
        lexer = jsonpath_parser.JSONPathLexer(antlr4.InputStream(path))
        parser = jsonpath_parser._JSONPathParser(antlr4.CommonTokenStream(lexer))
        listener = jsonpath_parser._JSONPathListener(_stack=[])
    except AttributeError:
        return JSONPath.parse_str(path)
    for recognizer in (lexer, parser):
        recognizer.removeErrorListeners()
        recognizer.addErrorListener(raising)
    antlr4.ParseTreeWalker().walk(listener, parser.jsonpath())
    return JSONPath(listener._stack.pop())
