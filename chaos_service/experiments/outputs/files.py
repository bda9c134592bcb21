"""Atomic file writes and the small helpers every output shares (time origin, series offsets)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from chaos_service.experiments.record import RunRecord

FILE_MODE = 0o644


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Writes ``text`` (UTF-8) to ``path`` through a temporary file in the same directory and a rename.

    Readers see either the previous file or the complete new one, never a partial write.
    Missing parent directories are created.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def time_origin(record: RunRecord) -> float:
    """The monotonic instant the record's probe results are measured from (``scheduled - origin``).

    ``record.t0`` when set; a record without one (``t0 == 0``) whose results are clearly raw
    monotonic readings (far beyond the run's duration) is measured from its earliest result.
    """
    if record.t0:
        return record.t0
    earliest = min((r.scheduled for probe in record.probes for r in probe.results), default=0.0)
    horizon = max(record.duration, max((f.planned_at + f.duration for f in record.faults), default=0.0))
    return earliest if earliest > horizon + 60.0 else 0.0


def first_fault_at(record: RunRecord) -> float | None:
    """When the first fault took effect (applied, or planned if none was applied), from the run's start."""
    applied = [f.applied_at for f in record.faults if f.applied_at is not None]
    if applied:
        return min(applied)
    return min((f.planned_at for f in record.faults), default=None)


def last_removal_at(record: RunRecord) -> float | None:
    """When the last applied fault was removed, from the run's start."""
    removed = [f.removed_at for f in record.faults if f.removed_at is not None]
    return max(removed, default=None)


def is_censored(recovery: float | None, recovery_text: str) -> bool:
    """Whether a probe's recovery time is censored: it had not recovered when observation ended."""
    return recovery is None and recovery_text.lstrip().startswith(">")
