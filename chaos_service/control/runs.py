"""Runs started by this replica, each in a worker process, and aborts wherever the run is.

A run is a row in the store first, then a worker process (`chaos_service.control.worker`).
Aborting goes through the store (``abort_requested``), so any replica can abort any run:
the replica that runs it sees the request within a poll and tells its worker. When a
worker exits without a verdict, the run is marked ``error`` and its recorded faults are
removed here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from chaos_service.control.errors import Busy, Conflict, Halted
from chaos_service.control.reconciler import remove_faults_of
from chaos_service.control.store import Store
from chaos_service.control.store.catalog import HALT, ExperimentRow
from chaos_service.control.store.runs import LIVE, RunRow
from chaos_service.errors import NotFound
from chaos_service.experiments.faults.base import FaultDriver

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.5
STOP_GRACE = 30.0


@dataclass
class LocalRun:
    run_id: str
    process: asyncio.subprocess.Process
    done: asyncio.Event = field(default_factory=asyncio.Event)
    told: bool = False


class RunManager:
    def __init__(
        self,
        store: Store,
        store_location: str,
        environment_path: Path,
        drivers: Sequence[FaultDriver],
        *,
        max_runs: int = 4,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self.store = store
        self.store_location = store_location
        self.environment_path = environment_path
        self.drivers = drivers
        self.max_runs = max_runs
        self.poll_interval = poll_interval
        self.local: dict[str, LocalRun] = {}
        self._watchers: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None

    def start_polling(self) -> None:
        self._poller = asyncio.create_task(self._poll())

    async def start(
        self, experiment: ExperimentRow, started_by: str, *, dry_run: bool = False, schedule_id: str | None = None
    ) -> str:
        """Start a run of ``experiment``; its id. Raises `Halted` or `Busy` (nothing started)."""
        if (halt := await self.store.get_state(HALT)) is not None:
            raise Halted(f"the control plane is halted ({halt.get('reason') or 'no reason given'}); release it first")
        if len(self.local) >= self.max_runs:
            raise Busy(f"{len(self.local)} runs are running here, the most this replica takes; wait or abort one")
        run_id = uuid.uuid4().hex[:12]
        await self.store.create_run(run_id, experiment.name, started_by, dry_run=dry_run, schedule_id=schedule_id)
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "chaos_service.control.worker",
                *("--store", self.store_location, "--replica", self.store.replica),
                *("--run", run_id, "--environment", str(self.environment_path)),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
            )
        except OSError as exc:
            await self.store.finish_run(run_id, "error", f"the run's worker could not start: {exc}")
            raise
        run = LocalRun(run_id, process)
        self.local[run_id] = run
        self._send(run, {"name": experiment.name, "source": experiment.source, "dry_run": dry_run})
        watcher = asyncio.create_task(self._watch(run))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        return run_id

    async def abort(self, run_id: str, reason: str) -> RunRow:
        """Ask for ``run_id`` to be aborted wherever it runs. Raises `NotFound`, or `Conflict` if it ended."""
        row = await self.store.get_run(run_id)
        if row is None:
            raise NotFound(f"no run {run_id!r}")
        if row.status not in LIVE:
            raise Conflict(f"run {run_id} has ended already ({row.status})")
        await self.store.request_abort(run_id, reason)
        if (run := self.local.get(run_id)) is not None:
            self._tell(run, reason)
        row = await self.store.get_run(run_id)
        assert row is not None
        return row

    def abort_local(self, reason: str) -> None:
        for run in self.local.values():
            self._tell(run, reason)

    async def wait(self, run_id: str) -> RunRow:
        """The run once it has ended (on this replica or another)."""
        if (run := self.local.get(run_id)) is not None:
            await run.done.wait()
        while True:
            row = await self.store.get_run(run_id)
            if row is None:
                raise NotFound(f"no run {run_id!r}")
            if row.status not in LIVE:
                return row
            await asyncio.sleep(self.poll_interval)

    async def close(self, reason: str) -> None:
        """Abort every local run and wait for its worker to clean up (killed after a grace)."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        self.abort_local(reason)
        for run in list(self.local.values()):
            try:
                async with asyncio.timeout(STOP_GRACE):
                    await run.done.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    run.process.kill()
        if self._watchers:
            await asyncio.gather(*self._watchers, return_exceptions=True)

    # -- the workers ------------------------------------------------------------------------------

    def _send(self, run: LocalRun, message: dict[str, object]) -> None:
        stdin = run.process.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.write((json.dumps(message) + "\n").encode())

    def _tell(self, run: LocalRun, reason: str) -> None:
        if not run.told:
            run.told = True
            self._send(run, {"abort": reason})

    async def _watch(self, run: LocalRun) -> None:
        try:
            code = await run.process.wait()
            if await self.store.finish_run(run.run_id, "error", f"the run's worker exited with code {code}"):
                log.warning("run %s: its worker exited with code %s before a verdict", run.run_id, code)
                await remove_faults_of(self.store, self.drivers, run.run_id)
        finally:
            if run.process.stdin is not None:
                run.process.stdin.close()
            self.local.pop(run.run_id, None)
            run.done.set()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                for run_id, reason in (await self.store.abort_requests()).items():
                    if (run := self.local.get(run_id)) is not None:
                        self._tell(run, reason)
            except Exception:
                log.exception("could not read abort requests")
