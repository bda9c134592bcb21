"""Durations and comparisons as experiment files write them.

A duration is a number of seconds (``5``, ``0.25``) or a string with a unit: ``250ms``,
``5s``, ``1.5m``, ``2h`` (a string without a unit is seconds too). A comparison is
``"<op> <number>[unit]"`` with an operator among ``< <= == != >= >``: ``">= 0.99"``,
``"<= 30s"``, ``">= 99%"``. Units are allowed where the metric is a time (seconds by
default), ``%`` where it is a rate (a fraction from 0 to 1 otherwise).

Pure: parsing raises `ValueError` with the message an experiment author reads.
"""

from __future__ import annotations

import json
import math
import re
from typing import cast

from chaos_service.experiments.plan import Comparison, Operator

#: Seconds per unit.
UNITS: dict[str, float] = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
#: Metrics whose values are fractions from 0 to 1.
RATE_METRICS = frozenset({"success_rate", "event_delivery"})

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_DURATION = re.compile(rf"\s*(?P<number>{_NUMBER})\s*(?P<unit>ms|s|m|h)?\s*")
_COMPARISON = re.compile(rf"\s*(?P<op><=|>=|==|!=|<|>)\s*(?P<number>{_NUMBER})\s*(?P<unit>ms|s|m|h|%)?\s*")


def shown(value: object) -> str:
    """A value as an error message quotes it: strings in double quotes, YAML spellings otherwise."""
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 80 else text[:76] + '…"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def parse_duration(value: object, *, allow_zero: bool = False) -> float:
    """Seconds from a duration as written in a file.

    Raises:
        ValueError: not a duration, or negative (or zero when ``allow_zero`` is false).
    """
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.fullmatch(value)):
        seconds = float(match["number"]) * UNITS[match["unit"] or "s"]
    if seconds is None or not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        kind = "a duration (0 or more)" if allow_zero else "a positive duration"
        raise ValueError(f"must be {kind} like 5s, 250ms or 1.5m, not {shown(value)}")
    return seconds


def format_duration(seconds: float) -> str:
    """``0.25`` → ``250ms``, ``5.0`` → ``5s``, ``90.0`` → ``90s``, ``7200.0`` → ``2h``."""
    if 0 < seconds < 1:
        return f"{seconds * 1000:g}ms"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    return f"{seconds:g}s"


def is_time_metric(metric: str) -> bool:
    return metric.endswith("_latency") or metric in ("recovery_time", "detection_time")


def parse_comparison(metric: str, value: object) -> Comparison:
    """``metric op value`` from the text a file gives for ``metric`` (``">= 0.99"``).

    Raises:
        ValueError: not a comparison, a unit that does not fit the metric, or a value out of range.
    """
    time = is_time_metric(metric)
    rate = metric in RATE_METRICS
    example = '"<= 30s"' if time else '">= 0.99"' if rate else '"== 0"'
    match = _COMPARISON.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"must be a comparison like {example} (an operator and a number), not {shown(value)}")
    number, unit = float(match["number"]), match["unit"]
    if unit == "%" and not rate:
        raise ValueError(f"{metric} is not a rate: write it without %, not {shown(value)}")
    if unit not in (None, "%") and not time:
        raise ValueError(f"{metric} is not a time: write a number without a unit, not {shown(value)}")
    if unit == "%":
        number /= 100
    elif unit is not None:
        number *= UNITS[unit]
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{metric} cannot be negative, not {shown(value)}")
    if rate and number > 1:
        raise ValueError(f"{metric} is a fraction from 0 to 1 (or a percentage like 99%), not {shown(value)}")
    text = f"{metric} {match['op']} {match['number'].lstrip('+')}{unit or ''}"
    return Comparison(metric, cast(Operator, match["op"]), number, text)
