"""One control-plane run in its own process: ``python -m chaos_service.control.worker``.

The serving process starts a worker per run so that a run's probes (up to thousands of
virtual users) never share an event loop with the API. The worker reads its job as one
JSON line on stdin — ``{"name", "source", "dry_run"}`` — and afterwards takes
``{"abort": reason}`` lines. End of input means the serving process is gone: the run is
interrupted, its faults are removed and it is marked ``interrupted``.

Everything it learns goes to the store: events while it runs, every fault before it is
applied, and at the end the verdict with the journal, JUnit and HTML reports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from chaos_service.control.recording import recording
from chaos_service.control.store import Store, open_store
from chaos_service.errors import ChaosServiceError
from chaos_service.experiments.faults.base import drivers_for
from chaos_service.experiments.loader import parse_experiment
from chaos_service.experiments.outputs import html_report, journal_json, junit_xml
from chaos_service.experiments.progress import run_status
from chaos_service.experiments.record import RunRecord
from chaos_service.experiments.runner import ExperimentRunner
from chaos_service.sandbox.environment import Environment

log = logging.getLogger("chaos_service.control.worker")

STATUS_INTERVAL = 1.0
SERVER_GONE = "the control plane that started the run went away"


class RunWorker:
    def __init__(self, store: Store, run_id: str, environment: Environment) -> None:
        self.store = store
        self.run_id = run_id
        self.environment = environment
        self.runner: ExperimentRunner | None = None
        self.server_gone = False
        self._early_abort = ""
        self._events: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue()

    def event(self, kind: str, **data: Any) -> None:
        self._events.put_nowait((kind, data))

    def abort(self, reason: str) -> None:
        if self.runner is not None:
            self.runner.interrupt(reason)
        else:
            self._early_abort = self._early_abort or reason

    def input_closed(self) -> None:
        self.server_gone = True
        self.abort(SERVER_GONE)

    async def run(self, name: str, source: str, dry_run: bool) -> int:
        writer = asyncio.create_task(self._write_events())
        try:
            try:
                plan = parse_experiment(source, f"{name}.yaml", self.environment)
            except ChaosServiceError as exc:
                await self._finish("error", f"the experiment is not valid here: {exc}")
                return 2
            drivers = recording(drivers_for(self.environment, run_id=self.run_id), self.store, self.run_id)
            self.runner = ExperimentRunner(
                plan,
                self.environment,
                drivers=drivers,
                dry_run=dry_run,
                notify=lambda text: self.event("message", text=text),
            )
            self.runner.run_id = self.run_id
            if self._early_abort:
                self.runner.interrupt(self._early_abort)
            self.event("started", experiment=name, title=plan.title, dry_run=dry_run)
            reporter = asyncio.create_task(self._report_status(self.runner))
            try:
                record = await self.runner.run()
            finally:
                reporter.cancel()
            await self._save_reports(record)
            status = "interrupted" if self.server_gone else record.outcome.value
            reason = SERVER_GONE if self.server_gone else record.reason
            await self._finish(status, reason)
            return record.outcome.exit_code
        finally:
            self._events.put_nowait(None)
            await writer

    async def _report_status(self, runner: ExperimentRunner) -> None:
        while True:
            await asyncio.sleep(STATUS_INTERVAL)
            status = run_status(runner.phase, runner.active, runner.results, time.monotonic(), runner.t0, runner.t_end)
            self.event("status", **asdict(status))

    async def _write_events(self) -> None:
        while (item := await self._events.get()) is not None:
            kind, data = item
            try:
                await self.store.add_event(self.run_id, kind, data)
            except Exception:  # the run goes on without its live view rather than stop
                log.exception("could not store a %s event", kind)

    async def _save_reports(self, record: RunRecord) -> None:
        for kind, render in (("journal", journal_json), ("junit", junit_xml), ("html", html_report)):
            try:
                await self.store.save_report(self.run_id, kind, render(record))
            except Exception:
                log.exception("could not store the %s report", kind)

    async def _finish(self, status: str, reason: str) -> None:
        await self.store.finish_run(self.run_id, status, reason)
        self.event("finished", status=status, reason=reason)


def _read_commands(worker: RunWorker, loop: asyncio.AbstractEventLoop) -> None:
    """Stdin, in a daemon thread (a blocked read must not keep the process alive at its end)."""
    for line in sys.stdin:
        with contextlib.suppress(ValueError, AttributeError):
            if reason := json.loads(line).get("abort"):
                loop.call_soon_threadsafe(worker.abort, str(reason))
    loop.call_soon_threadsafe(worker.input_closed)


async def main_async(args: argparse.Namespace) -> int:
    job = json.loads(sys.stdin.readline())
    store = await open_store(args.store, args.replica)
    try:
        worker = RunWorker(store, args.run, Environment.load(Path(args.environment)))
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, worker.abort, f"stopped by {signal.Signals(signum).name}")
        threading.Thread(target=_read_commands, args=(worker, loop), name="commands", daemon=True).start()
        return await worker.run(job["name"], job["source"], bool(job.get("dry_run")))
    finally:
        await store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos_service.control.worker")
    parser.add_argument("--store", required=True)
    parser.add_argument("--replica", required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--environment", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s worker %(levelname)s %(name)s: %(message)s")
    from chaos_service.runtime import run_async

    return run_async(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
