"""Assembling a control-plane replica: store, reconciler, run manager, game days, API server."""

from __future__ import annotations

import logging
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from chaos_service.control.api import create_app
from chaos_service.control.plane import ControlPlane
from chaos_service.control.reconciler import reconcile
from chaos_service.control.runs import RunManager
from chaos_service.control.scheduler.gamedays import GameDays
from chaos_service.control.store import Store, open_store
from chaos_service.experiments.faults.base import drivers_for
from chaos_service.experiments.loader import discover, load_experiment
from chaos_service.sandbox.environment import Environment
from chaos_service.serving import serve_asgi

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeOptions:
    store: str
    environment_path: Path
    replica: str | None = None
    max_runs: int = 4
    load: tuple[Path, ...] = ()


class PlaneLauncher:
    """How game days start and wait for runs: through the control plane, like any caller."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane

    async def start_run(self, experiment: str, started_by: str, schedule_id: str) -> str:
        return await self.plane.start_run(experiment, started_by, schedule_id=schedule_id)

    async def wait_run(self, run_id: str) -> tuple[str, str]:
        row = await self.plane.runs.wait(run_id)
        return row.status, row.reason


async def serve(options: ServeOptions, sock: socket.socket, out: TextIO = sys.stdout) -> int:
    environment = Environment.load(options.environment_path)
    store = await open_store(options.store, options.replica)
    try:
        drivers = drivers_for(environment)
        reconciled = await reconcile(store, drivers)
        await _load(store, options.load, environment)
        runs = RunManager(store, options.store, options.environment_path, drivers, max_runs=options.max_runs)
        plane = ControlPlane(store, environment, drivers, runs)
        gamedays = GameDays(store, PlaneLauncher(plane))
        try:
            await gamedays.start()
            runs.start_polling()
            plane.start_expiry_sweep()
            app = create_app(plane, gamedays)

            def ready(url: str) -> None:
                print(f"chaos-service serve: listening on {url} (replica {store.replica})", file=out, flush=True)
                if reconciled.interrupted_runs or reconciled.removed_faults or reconciled.failed:
                    print(
                        f"chaos-service serve: at start, marked {len(reconciled.interrupted_runs)} runs interrupted "
                        f"and removed {len(reconciled.removed_faults)} faults they left"
                        + (f"; could not remove {'; '.join(reconciled.failed)}" if reconciled.failed else ""),
                        file=out,
                        flush=True,
                    )

            await serve_asgi(app, sock, ready)
        finally:
            await gamedays.stop()
            await plane.close()
    finally:
        await store.close()
    return 0


async def _load(store: Store, paths: tuple[Path, ...], environment: Environment) -> None:
    """Store the experiment files under ``paths`` that the store does not have yet (by file stem)."""
    for path in discover(paths) if paths else []:
        name = path.stem
        if await store.get_experiment(name) is None:
            plan = load_experiment(path, environment)
            await store.create_experiment(name, plan.title, path.read_text(encoding="utf-8"), "serve --load")
