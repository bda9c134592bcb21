"""Benchmark results, statistics helpers, machine description and the Markdown report."""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TypeVar

D = TypeVar("D")
P = TypeVar("P")


# -- statistics -----------------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """The `pct`-th percentile of `values`, linearly interpolated between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def alternate(rounds: int, direct: Callable[[], D], proxied: Callable[[], P]) -> tuple[list[D], list[P]]:
    """Run direct, proxied, direct, proxied, … (`rounds` of each); return both lists of results."""
    directs: list[D] = []
    proxieds: list[P] = []
    for i in range(rounds):
        directs.append(direct())
        log(f"    round {i + 1}/{rounds}: direct done")
        proxieds.append(proxied())
        log(f"    round {i + 1}/{rounds}: through engine done")
    return directs, proxieds


def log(message: str) -> None:
    """Progress output (stderr, flushed)."""
    print(message, file=sys.stderr, flush=True)


# -- results --------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of a benchmark's table; `passed` is None for rows without a target."""

    metric: str
    direct: str
    proxied: str
    comparison: str
    target: str = ""
    passed: bool | None = None


@dataclass
class Result:
    """The outcome of one benchmark."""

    key: str
    title: str
    description: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    labels: tuple[str, str] = ("Direct", "Through engine")

    @property
    def verdict(self) -> str:
        if self.error is not None:
            return "ERROR"
        checks = [row.passed for row in self.rows if row.passed is not None]
        if not checks:
            return "—"
        return "PASS" if all(checks) else "FAIL"


def verdict(passed: bool | None) -> str:
    return "—" if passed is None else ("PASS" if passed else "FAIL")


# -- machine --------------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return math.nan


def load_average() -> str:
    """The 1/5/15-minute load averages from /proc/loadavg."""
    try:
        return " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def machine_lines(load_before: str) -> list[str]:
    try:
        loop = f"uvloop {version('uvloop')}"
    except PackageNotFoundError:  # pragma: no cover
        loop = "asyncio"
    return [
        f"- CPUs: {os.cpu_count()} x {cpu_model()}",
        f"- Memory: {memory_gib():.1f} GiB",
        f"- Kernel: {platform.system()} {platform.release()}",
        f"- Python: {platform.python_version()} ({platform.python_implementation()}), engine loop: {loop}",
        f"- Date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M:%S UTC')}",
        f"- Load average (1/5/15 min) before the run: {load_before}; after: {load_average()} "
        "(other work on the machine shares its cores with the benchmark)",
    ]


# -- Markdown -------------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def _section(index: int, result: Result) -> list[str]:
    lines = [f"## {index}. {result.title} — {result.verdict}", "", result.description, ""]
    if result.error is not None:
        lines += [f"**Could not run:** {result.error}", ""]
    if result.rows:
        header = ("Metric", *result.labels, "Ratio / difference", "Target", "Result")
        cells = [(r.metric, r.direct, r.proxied, r.comparison, r.target or "—", verdict(r.passed)) for r in result.rows]
        lines += [*_table(header, cells), ""]
    lines += [f"- {note}" for note in result.notes]
    lines += [f"- Wall time of this benchmark: {result.seconds:.0f} s", ""]
    return lines


def render(results: Sequence[Result], command: str, total_seconds: float, quick: bool, load_before: str) -> str:
    """The whole results file."""
    lines = ["# chaos-service engine benchmarks", ""]
    lines += [
        f"Produced by `{command}` (from the project root; `make bench` runs it)"
        + (" (**--quick** smoke run: fewer, shorter rounds)" if quick else ""),
        f"in {total_seconds:.0f} s.",
        "",
    ]
    lines += [
        "Every number is measured in this run: the same workload directly against the server and",
        "through an engine proxy (fresh engine per benchmark, no toxics unless stated), alternating",
        "direct and proxied runs (A B A B …) and reporting medians. Traffic generators, servers and",
        "the engine are separate processes; all traffic is on 127.0.0.1.",
        "",
    ]
    lines += ["## Machine", "", *machine_lines(load_before), ""]
    lines += [
        "Reading the numbers: a proxied exchange keeps three processes busy (client, engine, server)",
        f"where a direct one keeps two, on {os.cpu_count()} CPU(s), so proxied runs pay for CPU sharing and",
        "context switches as well as for the engine's own work. Waking a process on another CPU can cost",
        "far more than the work itself (see the pinned series of the round-trip benchmark). Other work",
        "may share the machine: each benchmark notes the load just before it and the machine's CPU use",
        "during its direct and proxied runs.",
        "",
    ]
    summary = [(f"{i}. {r.title}", r.verdict) for i, r in enumerate(results, 1)]
    lines += ["## Summary", "", *_table(("Benchmark", "Result"), summary), ""]
    for i, result in enumerate(results, 1):
        lines += _section(i, result)
    return "\n".join(lines).rstrip() + "\n"


# -- formatting -----------------------------------------------------------------------------------


def fmt(value: float, digits: int = 1, unit: str = "") -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:,.{digits}f}{unit}"


def fmt_ratio(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value * 100:.2f}%"


def write_section(path: Path, start: str, end: str, section: str) -> None:
    """Put ``section`` (which begins with ``start`` and ends with ``end``) into the Markdown file at
    ``path``: in place of the one there between the same markers, else at the end."""
    text = path.read_text() if path.exists() else ""
    if start in text and end in text:
        text = text[: text.index(start)] + section + text[text.index(end) + len(end) + 1 :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)
