"""The run's timeline chart, drawn with matplotlib (Agg) and returned as inline SVG.

x is seconds from the run's start. Three panels share it:

* faults: one row per fault (one per target when there are many), a bar from applied to
  removed labelled ``fault → target``; a fault that was never applied is drawn hatched over
  its planned window, one still in place at the end of the run is drawn to the run's end;
* probes: one lane per probe, coloured green where its attempts succeeded, red where they
  failed and orange where both happened in the same time bin; each probe's detection
  instant (first failure after the first fault) and recovery instant (first of K successes
  after the last removal) are vertical lines labelled on its lane, a censored recovery is
  labelled ``not recovered`` at the lane's end;
* latency: per probe, the latency of successful attempts (the median per time bin once a
  probe has too many attempts to draw one by one) and failed attempts as red crosses at
  their time to failure; log scale when latencies span more than a factor of 20.

The union of the applied fault windows is shaded in the probe and latency panels. Every
series is reduced to at most ``max_bins`` time bins, so charts of 100,000 results stay small.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from chaos_service.experiments.outputs.files import first_fault_at, is_censored, last_removal_at, time_origin
from chaos_service.experiments.outputs.masking import Masker
from chaos_service.experiments.record import FaultWindow, ProbeSummary, RunRecord

OK_COLOR, MIXED_COLOR, FAIL_COLOR = "#2e9e4f", "#f5a623", "#d62728"
FAULT_SHADE = "#9467bd"
DETECT_COLOR, RECOVER_COLOR = "#c0392b", "#1f7a3a"
PROBE_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
FAULT_COLORS = ("#b39ddb", "#90caf9", "#ffcc80", "#a5d6a7", "#ef9a9a", "#80deea", "#ce93d8", "#c5e1a5")
RAW_LIMIT = 1500  # attempts per probe drawn one by one; above this the series is binned


@dataclass(frozen=True)
class ChartLimits:
    """How much one chart shows: more probes or fault rows than this are summarised in the caption."""

    max_bins: int = 400
    max_probes: int = 12
    max_fault_rows: int = 16


DEFAULT_LIMITS = ChartLimits()


@dataclass(frozen=True)
class _Series:
    t: np.ndarray
    ok: np.ndarray
    latency: np.ndarray


def timeline_svg(
    record: RunRecord, *, masker: Masker | None = None, limits: ChartLimits | None = None, id_prefix: str = "c"
) -> tuple[str, str]:
    """The timeline chart of ``record`` as an inline ``<svg>`` element, and a caption.

    The SVG has no external references and no XML prologue; its element ids start with
    ``id_prefix`` so several charts can share one page. Returns ``("", caption)`` when there
    is nothing to draw.
    """
    figure, caption = timeline_figure(record, masker=masker, limits=limits or DEFAULT_LIMITS)
    if figure is None:
        return "", caption
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": id_prefix}):
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    return _inline(buffer.getvalue(), id_prefix), caption


def timeline_figure(
    record: RunRecord, *, masker: Masker | None = None, limits: ChartLimits = DEFAULT_LIMITS
) -> tuple[Figure | None, str]:
    """The timeline chart of ``record`` as a matplotlib figure (Agg canvas) and its caption.

    The figure is None when there is nothing to draw: no probe results and no faults.
    """
    mask = masker or Masker()
    origin = time_origin(record)
    probes = _charted_probes(record.probes, limits.max_probes)
    series = {probe.name: _series(probe, origin) for probe in probes}
    if not record.faults and not any(len(s.t) for s in series.values()):
        return None, "No timeline: the run has no probe results and no faults."
    x0, x1 = _extent(record, series.values())
    bins = np.linspace(x0, x1, limits.max_bins + 1)
    fault_rows = _fault_rows(record.faults, limits.max_fault_rows)

    heights = [0.45 + 0.3 * max(len(fault_rows), 1), 0.5 + 0.38 * max(len(probes), 1), 2.6]
    labels = [_short(mask.text(name)) for name, _ in fault_rows] + [_short(mask.text(p.name)) for p in probes]
    width, top, bottom = 10.0, 0.45, 0.8
    left = 0.75 + 0.055 * max((len(label) for label in labels), default=4)  # inches: y labels at 7 pt
    height = sum(heights) + 0.3 * 2 + top + bottom
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    fig.subplots_adjust(
        left=left / width, right=0.98, top=1 - top / height, bottom=bottom / height, hspace=0.3 * 3 / sum(heights)
    )
    axes = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": heights})
    ax_faults, ax_lanes, ax_latency = (axes[0], axes[1], axes[2])
    _draw_faults(ax_faults, fault_rows, x1, mask)
    for ax in (ax_lanes, ax_latency):
        for start, end in _union(_windows(record.faults, x1)):
            ax.axvspan(start, end, color=FAULT_SHADE, alpha=0.12, linewidth=0)
    _draw_lanes(ax_lanes, record, probes, series, bins, x1, mask)
    _draw_latency(ax_latency, probes, series, bins, mask)
    ax_latency.set_xlim(x0, x1)
    ax_latency.set_xlabel("seconds from the run's start")
    fig.suptitle(_label(mask.text(record.title) or mask.text(record.path)), fontsize=11, y=1 - 0.12 / height)
    fig.legend(handles=_legend(), loc="lower center", bbox_to_anchor=(0.5, 0.0), ncols=7, fontsize=7, frameon=False)
    return fig, _caption(record, probes, fault_rows, (x1 - x0) / limits.max_bins)


def _charted_probes(probes: Sequence[ProbeSummary], limit: int) -> list[ProbeSummary]:
    """All probes, or the ``limit`` with the most failures (in their original order)."""
    if len(probes) <= limit:
        return list(probes)
    worst = sorted(range(len(probes)), key=lambda i: (-(probes[i].attempts - probes[i].ok), i))[:limit]
    return [probes[i] for i in sorted(worst)]


def _series(probe: ProbeSummary, origin: float) -> _Series:
    n = len(probe.results)
    t = np.fromiter((r.scheduled - origin for r in probe.results), dtype=float, count=n)
    ok = np.fromiter((r.ok for r in probe.results), dtype=bool, count=n)
    latency = np.fromiter((r.latency for r in probe.results), dtype=float, count=n)
    order = np.argsort(t, kind="stable")
    return _Series(t[order], ok[order], np.maximum(latency[order], 1e-6))


def _extent(record: RunRecord, series: Iterable[_Series]) -> tuple[float, float]:
    ends = [record.duration]
    starts = [0.0]
    for s in series:
        if len(s.t):
            starts.append(float(s.t[0]))
            ends.append(float(s.t[-1] + s.latency[-1]))
    for fault in record.faults:
        ends.append(fault.removed_at or (fault.applied_at or fault.planned_at) + fault.duration)
    x0, x1 = min(starts), max(ends)
    return x0, x1 if x1 > x0 else x0 + 1.0


def _windows(faults: Sequence[FaultWindow], run_end: float) -> list[tuple[float, float]]:
    return [
        (f.applied_at, f.removed_at if f.removed_at is not None else max(run_end, f.applied_at))
        for f in faults
        if f.applied_at is not None
    ]


def _union(windows: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(windows):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _fault_rows(faults: Sequence[FaultWindow], limit: int) -> list[tuple[str, list[FaultWindow]]]:
    """One row per fault, or one per target when there are more than ``limit`` faults."""
    if len(faults) <= limit:
        return [(f.name, [f]) for f in faults]
    by_target: dict[str, list[FaultWindow]] = {}
    for fault in faults:
        by_target.setdefault(fault.target, []).append(fault)
    rows = [(f"→ {target}", group) for target, group in by_target.items()]
    if len(rows) > limit:
        rest = [f for _, group in rows[limit - 1 :] for f in group]
        rows = [*rows[: limit - 1], (f"{len(rows) - limit + 1} more targets", rest)]
    return rows


def _draw_faults(ax: Axes, rows: list[tuple[str, list[FaultWindow]]], run_end: float, mask: Masker) -> None:
    palette = itertools.cycle(FAULT_COLORS)
    colors: dict[str, str] = {}
    for y, (_, group) in enumerate(rows):
        for fault in group:
            color = colors.setdefault(fault.fault, next(palette))
            if fault.applied_at is None:
                span = (fault.planned_at, fault.duration)
                ax.broken_barh(
                    [span], (y - 0.35, 0.7), facecolor="none", edgecolor="#888888", hatch="///", linewidth=0.6
                )
                text = f"{fault.fault} → {fault.target}: not applied"
            else:
                end = fault.removed_at if fault.removed_at is not None else max(run_end, fault.applied_at)
                span = (fault.applied_at, max(end - fault.applied_at, 1e-3))
                style = "solid" if fault.removed_at is not None else "dashed"
                ax.broken_barh(
                    [span], (y - 0.35, 0.7), facecolor=color, edgecolor="#555555", linewidth=0.6, linestyle=style
                )
                text = f"{fault.fault} → {fault.target}" + ("" if fault.removed_at is not None else " (not removed)")
            if len(group) == 1:
                ax.text(span[0], y, " " + _label(mask.text(text)), va="center", ha="left", fontsize=7, clip_on=True)
    ax.set_yticks(range(len(rows)), [_label(_short(mask.text(name))) for name, _ in rows], fontsize=7)
    ax.set_ylim(len(rows) - 0.5 if rows else 0.5, -0.5)
    ax.set_ylabel("faults", fontsize=8)
    if not rows:
        ax.text(0.5, 0.5, "no faults", transform=ax.transAxes, ha="center", va="center", fontsize=8, color="#666666")
        ax.set_yticks([])
    ax.grid(axis="x", alpha=0.3)


def _draw_lanes(
    ax: Axes,
    record: RunRecord,
    probes: Sequence[ProbeSummary],
    series: dict[str, _Series],
    bins: np.ndarray,
    run_end: float,
    mask: Masker,
) -> None:
    first_fault, last_removal = first_fault_at(record), last_removal_at(record)
    for y, probe in enumerate(probes):
        s = series[probe.name]
        if len(s.t):
            for color, spans in _lane_spans(s, bins).items():
                ax.broken_barh(spans, (y - 0.3, 0.6), facecolor=color, linewidth=0)
        if probe.detection is not None and first_fault is not None:
            at = first_fault + probe.detection
            ax.axvline(at, color=DETECT_COLOR, linestyle="--", linewidth=0.9)
            _mark(ax, at, y - 0.32, f"detected +{probe.detection:.2f} s", DETECT_COLOR, "bottom", bins)
        if probe.recovery is not None and last_removal is not None:
            at = last_removal + probe.recovery
            ax.axvline(at, color=RECOVER_COLOR, linestyle=":", linewidth=1.1)
            _mark(ax, at, y + 0.32, f"recovered +{probe.recovery:.2f} s", RECOVER_COLOR, "top", bins)
        elif is_censored(probe.recovery, probe.recovery_text):
            note = f"not recovered ({mask.text(probe.recovery_text)}) "
            ax.text(run_end, y + 0.32, _label(note), color=DETECT_COLOR, fontsize=7, va="top", ha="right")
    ax.set_yticks(range(len(probes)), [_label(_short(mask.text(p.name))) for p in probes], fontsize=7)
    ax.set_ylim(len(probes) - 0.5 if probes else 0.5, -0.5)
    ax.set_ylabel("probes", fontsize=8)
    if not probes:
        ax.text(0.5, 0.5, "no probes", transform=ax.transAxes, ha="center", va="center", fontsize=8, color="#666666")
        ax.set_yticks([])


def _mark(ax: Axes, at: float, y: float, text: str, color: str, va: str, bins: np.ndarray) -> None:
    """A label beside a vertical line: to its right, or to its left near the chart's right edge."""
    right_side = at < bins[0] + 0.8 * (bins[-1] - bins[0])
    label = f" {text}" if right_side else f"{text} "
    ax.text(at, y, label, color=color, fontsize=7, va=va, ha="left" if right_side else "right")


def _lane_spans(s: _Series, bins: np.ndarray) -> dict[str, list[tuple[float, float]]]:
    """Runs of equal state along a probe's lane; each bin keeps the state of the last attempt seen."""
    index = np.clip(np.searchsorted(bins, s.t, side="right") - 1, 0, len(bins) - 2)
    count = np.bincount(index, minlength=len(bins) - 1)
    good = np.bincount(index, weights=s.ok.astype(float), minlength=len(bins) - 1)
    state = np.where(count == 0, -1, np.where(good == count, 0, np.where(good == 0, 2, 1)))
    filled = np.where(state >= 0, np.arange(len(state)), 0)
    np.maximum.accumulate(filled, out=filled)
    state = state[filled]
    first, last = int(index[0]), int(index[-1])
    colors = (OK_COLOR, MIXED_COLOR, FAIL_COLOR)
    spans: dict[str, list[tuple[float, float]]] = {}
    start = first
    for i in range(first + 1, last + 2):
        if i == last + 1 or state[i] != state[start]:
            spans.setdefault(colors[int(state[start])], []).append((float(bins[start]), float(bins[i] - bins[start])))
            start = i
    return spans


def _draw_latency(
    ax: Axes, probes: Sequence[ProbeSummary], series: dict[str, _Series], bins: np.ndarray, mask: Masker
) -> None:
    lowest, highest = np.inf, 0.0
    for probe, color in zip(probes, itertools.cycle(PROBE_COLORS), strict=False):
        s = series[probe.name]
        if not len(s.t):
            continue
        (xo, yo), (xf, yf) = _latency_points(s, bins)
        xo, yo = _break_gaps(xo, yo, float(bins[1] - bins[0]))
        ax.plot(
            xo,
            yo,
            color=color,
            linewidth=0.9,
            marker="." if len(xo) < 200 else None,
            markersize=3,
            label=_label(_short(mask.text(probe.name))),
        )
        if len(xf):
            ax.plot(xf, yf, linestyle="none", marker="x", color=FAIL_COLOR, markersize=4, markeredgewidth=0.9)
        lowest, highest = min(lowest, float(s.latency.min())), max(highest, float(s.latency.max()))
    if highest > 0 and highest / lowest > 20:
        ax.set_yscale("log")
    ax.set_ylabel("latency (s)", fontsize=8)
    ax.grid(alpha=0.3)
    if any(len(series[p.name].t) for p in probes):
        ax.legend(fontsize=7, loc="upper right", framealpha=0.8)


def _latency_points(
    s: _Series, bins: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(successes, failures) as (x, y): raw points, or per-bin medians and maxima above `RAW_LIMIT`."""
    if len(s.t) <= RAW_LIMIT:
        return (s.t[s.ok], s.latency[s.ok]), (s.t[~s.ok], s.latency[~s.ok])
    centers = (bins[:-1] + bins[1:]) / 2
    n = len(centers)
    index = np.clip(np.searchsorted(bins, s.t, side="right") - 1, 0, n - 1)
    ok_index, ok_latency = index[s.ok], s.latency[s.ok]
    order = np.lexsort((ok_latency, ok_index))
    count = np.bincount(ok_index, minlength=n)
    starts = np.concatenate(([0], np.cumsum(count)[:-1]))
    has = count > 0
    median = ok_latency[order][(starts + (count - 1) // 2)[has]] if has.any() else np.array([])
    worst = np.full(n, -np.inf)
    np.maximum.at(worst, index[~s.ok], s.latency[~s.ok])
    failed = worst > -np.inf
    return (centers[has], median), (centers[failed], worst[failed])


def _break_gaps(x: np.ndarray, y: np.ndarray, bin_width: float) -> tuple[np.ndarray, np.ndarray]:
    """The line broken (a NaN inserted) wherever successes pause much longer than usual, e.g. during a fault."""
    if len(x) < 3:
        return x, y
    step = np.diff(x)
    gaps = np.flatnonzero(step > max(5.0 * float(np.median(step)), 2.0 * bin_width)) + 1
    return np.insert(x, gaps, np.nan), np.insert(y, gaps, np.nan)


def _legend() -> list[Patch | Line2D]:
    return [
        Patch(facecolor=FAULT_SHADE, alpha=0.25, label="fault applied"),
        Patch(facecolor=OK_COLOR, label="succeeded"),
        Patch(facecolor=MIXED_COLOR, label="some failed"),
        Patch(facecolor=FAIL_COLOR, label="failed"),
        Line2D([], [], color=DETECT_COLOR, linestyle="--", label="detection"),
        Line2D([], [], color=RECOVER_COLOR, linestyle=":", label="recovery"),
        Line2D([], [], color=FAIL_COLOR, linestyle="none", marker="x", label="failed attempt (time to failure)"),
    ]


def _caption(
    record: RunRecord, probes: Sequence[ProbeSummary], rows: list[tuple[str, list[FaultWindow]]], bin_width: float
) -> str:
    parts = ["Seconds from the run's start; shaded: faults applied."]
    if len(probes) < len(record.probes):
        parts.append(f"{len(probes)} of {len(record.probes)} probes charted (those with the most failures).")
    if len(rows) < len(record.faults):
        parts.append(f"{len(record.faults)} faults grouped by target.")
    if any(len(p.results) > RAW_LIMIT for p in probes):
        parts.append(f"Probes with over {RAW_LIMIT} attempts: latency is the median per {bin_width:.3g} s bin.")
    return " ".join(parts)


def _short(text: str, width: int = 28) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _label(text: str) -> str:
    """Text matplotlib draws literally: ``$`` would start mathtext."""
    return text.replace("$", r"\$")


_PROLOGUE = re.compile(r"^.*?(?=<svg\b)", re.DOTALL)
_NAMESPACES = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')
_SIZE = re.compile(r'\s+(?:width|height)="[^"]*"')
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)


def _inline(svg: str, prefix: str) -> str:
    """Matplotlib's SVG as an element for an HTML page: no prologue, no namespaces, unique ids, fluid width."""
    svg = _METADATA.sub("", _PROLOGUE.sub("", svg, count=1))
    head_end = svg.index(">")
    head = _SIZE.sub("", _NAMESPACES.sub("", svg[:head_end]))
    svg = head + ' class="timeline" role="img" aria-label="timeline chart"' + svg[head_end:]
    svg = re.sub(r'(<[^<>]*?\s)id="', rf'\1id="{prefix}-', svg)
    svg = re.sub(r'(<[^<>]*?\s)(xlink:href|href)="#', rf'\1\2="#{prefix}-', svg)
    return re.sub(r"url\(#", f"url(#{prefix}-", svg)
