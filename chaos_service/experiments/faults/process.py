"""Faults on local processes named in the environment: ``pause`` and ``kill`` (Linux).

* ``pause`` stops the process with SIGSTOP; removing the fault resumes it with SIGCONT.
  Before stopping it, the driver starts a detached watchdog (`watchdog`, in a session of
  its own) that sends SIGCONT when the ttl is up unless it is stood down first — so a
  runner killed with SIGKILL leaves no process paused once the ttl has passed.
  Removing the fault sends SIGCONT, then stands the watchdog down.
* ``kill`` sends SIGKILL. It cannot be undone: removing a kill fault does nothing, and
  bringing the process back is its supervisor's business.

Processes are named by `Environment.processes` (name → pid). A pid is only signalled
while it still belongs to the process first seen by `LocalProcessDriver.check` (or
`apply`): its start time in ``/proc/PID/stat`` must not have changed, so a pid reused by
another process after a restart is never touched. The driver refuses pid 1 and its own
process and parent.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos_service.experiments.faults.base import AppliedFault, FaultError, FaultTargetError
from chaos_service.experiments.faults.watchdogs import PROCESS_WATCHDOG, Watchdogs
from chaos_service.experiments.plan import FaultPlan
from chaos_service.sandbox.environment import Environment

log = logging.getLogger(__name__)

PROCESS_FAULTS = ("kill", "pause")


@dataclass(frozen=True)
class ProcessInfo:
    """What ``/proc/PID`` says about a process at one moment."""

    pid: int
    start_time: int  # clock ticks since boot
    state: str  # R, S, D, T (stopped), t, Z (zombie), …
    command: str

    @classmethod
    def read(cls, pid: int) -> ProcessInfo | None:
        """The process ``pid`` now, None if there is none."""
        try:
            stat = Path(f"/proc/{pid}/stat").read_bytes().decode("utf-8", "replace")
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        comm, _, rest = stat.partition(" (")[2].rpartition(")")
        fields = rest.split()
        try:
            state, start_time = fields[0], int(fields[19])
        except (IndexError, ValueError):
            return None
        command = cmdline.replace(b"\0", b" ").decode("utf-8", "replace").strip() or f"[{comm}]"
        return cls(pid, start_time, state, command[:200])

    def same_process(self, other: ProcessInfo | None) -> bool:
        return other is not None and other.pid == self.pid and other.start_time == self.start_time

    @property
    def stopped(self) -> bool:
        return self.state in ("T", "t")

    @property
    def dead(self) -> bool:
        return self.state in ("Z", "X", "x")


class LocalProcessDriver:
    """Signals local processes: ``pause`` (SIGSTOP, ttl-bounded by a watchdog) and ``kill``."""

    name = "process"
    fault_types: tuple[str, ...] = PROCESS_FAULTS

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        #: The process first seen under each name: later signals go to it only.
        self._seen: dict[str, ProcessInfo] = {}
        self._watchdogs = Watchdogs()

    # -- the FaultDriver interface ------------------------------------------------------

    def handles(self, fault: FaultPlan) -> bool:
        return fault.fault in PROCESS_FAULTS

    async def check(self, fault: FaultPlan) -> None:
        self._resolve(fault)

    async def apply(self, fault: FaultPlan, ttl: float) -> AppliedFault:
        if not ttl > 0:
            raise FaultError(f"fault {fault.name!r}: ttl must be greater than 0 seconds, got {ttl}")
        process = self._resolve(fault)
        applied_at = time.monotonic()
        deadline = applied_at + ttl
        handle: dict[str, Any] = {"pid": process.pid, "start_time": process.start_time}
        if fault.fault == "pause":
            arguments = [str(process.pid), str(process.start_time), repr(deadline)]
            what = f"fault {fault.name!r}"
            gone = {"gone": f"pid {process.pid} exited before it could be paused"}
            watchdog = await self._watchdogs.start(PROCESS_WATCHDOG, arguments, what, refusals=gone)
            handle |= {"signal": "SIGSTOP"} | watchdog
            try:
                self._signal(fault.name, process, signal.SIGSTOP)
            except FaultError:
                await self._watchdogs.stand_down(handle)
                raise
        else:
            handle["signal"] = "SIGKILL"
            self._signal(fault.name, process, signal.SIGKILL)
        log.info(
            "applied fault %s: %s to %s (pid %d, ttl %g s)",
            fault.name,
            handle["signal"],
            fault.target,
            process.pid,
            ttl,
        )
        return AppliedFault(
            name=fault.name,
            driver=self.name,
            handle=handle,
            applied_at=applied_at,
            expires_at=deadline,
            ttl=ttl,
            target=fault.target,
            kind=fault.fault,
        )

    async def verify(self, applied: AppliedFault) -> str | None:
        """``pid N stopped (state T)`` for a pause; ``pid N is gone`` for a kill; else None."""
        pid, start_time, sig = _handle(applied)
        now = ProcessInfo.read(pid)
        same = now is not None and now.start_time == start_time
        if sig == "SIGKILL":
            if not same:
                return f"pid {pid} is gone"
            if now is not None and now.dead:
                return f"pid {pid} was killed (state {now.state}: not yet reaped by its parent)"
            return None
        if same and now is not None and now.stopped:
            return f"pid {pid} stopped (state {now.state})"
        return None

    async def remove(self, applied: AppliedFault) -> None:
        """Resume a paused process and stand its watchdog down; nothing for a kill."""
        pid, start_time, sig = _handle(applied)
        if sig == "SIGKILL":
            return  # irreversible: the process is gone
        now = ProcessInfo.read(pid)
        if now is not None and now.start_time == start_time:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass  # exited meanwhile
            except PermissionError as exc:
                raise FaultError(f"fault {applied.name!r}: not permitted to resume pid {pid}: {exc}") from None
        await self._watchdogs.stand_down(applied.handle)
        log.info("removed fault %s: resumed pid %d", applied.name, pid)

    # -- helpers ------------------------------------------------------------------------

    def _resolve(self, fault: FaultPlan) -> ProcessInfo:
        """The process ``fault`` targets, checked to be the one first seen under its name."""
        where = f"fault {fault.name!r}"
        if fault.fault not in PROCESS_FAULTS:
            raise FaultTargetError(f"{where}: {fault.fault!r} is not a process fault (use {', '.join(PROCESS_FAULTS)})")
        pid = self.environment.processes.get(fault.target)
        if pid is None:
            known = ", ".join(sorted(self.environment.processes)) or "none"
            raise FaultTargetError(f"{where}: unknown process {fault.target!r} (the environment's processes: {known})")
        if pid <= 1 or pid in (os.getpid(), os.getppid()):
            raise FaultTargetError(f"{where}: refusing to signal pid {pid} ({fault.target!r}): it is init or this run")
        if not Path("/proc/self/stat").exists():
            raise FaultTargetError(f"{where}: process faults need Linux's /proc")
        now = ProcessInfo.read(pid)
        if now is None or now.dead:
            raise FaultTargetError(f"{where}: process {fault.target!r} (pid {pid}) is not running")
        seen = self._seen.setdefault(fault.target, now)
        if not seen.same_process(now):
            raise FaultTargetError(
                f"{where}: pid {pid} no longer belongs to process {fault.target!r} as first seen"
                f" ({seen.command!r}); it is now {now.command!r}"
            )
        if fault.fault == "pause" and now.stopped:
            raise FaultTargetError(f"{where}: process {fault.target!r} (pid {pid}) is already stopped")
        if fault.attributes:
            raise FaultTargetError(f"{where}: {fault.fault} takes no attributes, got {sorted(fault.attributes)}")
        return now

    def _signal(self, name: str, process: ProcessInfo, sig: signal.Signals) -> None:
        if not process.same_process(ProcessInfo.read(process.pid)):
            raise FaultError(f"fault {name!r}: pid {process.pid} exited before it could be sent {sig.name}")
        try:
            os.kill(process.pid, sig)
        except ProcessLookupError:
            raise FaultError(f"fault {name!r}: pid {process.pid} exited before it could be sent {sig.name}") from None
        except PermissionError as exc:
            raise FaultError(f"fault {name!r}: not permitted to send {sig.name} to pid {process.pid}: {exc}") from None


def _handle(applied: AppliedFault) -> tuple[int, int, str]:
    try:
        return int(applied.handle["pid"]), int(applied.handle["start_time"]), str(applied.handle["signal"])
    except (KeyError, TypeError, ValueError):
        raise FaultError(f"fault {applied.name!r}: not a process fault handle: {applied.handle!r}") from None
