"""The tour: real clients and servers with the engine between them, under faults, part by part."""

from __future__ import annotations

from typing import TextIO

import httpx

from chaos_service.demo import chat, datastore, llm
from chaos_service.engine.process import EngineProcess


def run_tour(out: TextIO) -> int:
    def say(text: str) -> None:
        print(text, file=out, flush=True)

    with EngineProcess(log_level="warning") as engine, httpx.Client(base_url=engine.url, timeout=10) as api:
        say(f"chaos-service tour: the fault engine's API is on {engine.url}\n")
        datastore.run(api, say)
        say("")
        llm.run(api, say)
    say("")
    chat.run(say)
    say("\ndone: every fault removed, every server and engine stopped.")
    return 0
