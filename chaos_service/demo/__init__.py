"""The demo: real clients, real servers and the engine between them, under faults.

One engine process runs every proxy; each part puts a private server behind a proxy,
injects faults through the engine's API and prints what a real client saw.
"""

from __future__ import annotations

from typing import TextIO

import httpx

from chaos_service.demo import datastore, llm
from chaos_service.engine.process import EngineProcess


def run_demo(out: TextIO) -> int:
    def say(text: str) -> None:
        print(text, file=out, flush=True)

    with EngineProcess(log_level="warning") as engine, httpx.Client(base_url=engine.url, timeout=10) as api:
        say(f"chaos-service demo: the fault engine's API is on {engine.url}\n")
        datastore.run(api, say)
        say("")
        llm.run(api, say)
    say("\ndone: every fault removed, every server and the engine stopped.")
    return 0
