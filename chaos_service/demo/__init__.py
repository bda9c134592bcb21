"""The demo and the tour.

`suite.run_suite_demo` is the demo: the built-in experiments against sandboxes. The tour
(`run_tour`) shows real clients, real servers and the engine between them, under faults:
its first parts put a private server behind a proxy of one engine, inject faults through
the engine's API and print what a real client saw; the last runs the sandbox's chat
back-end behind its own engine and shows what a chat user sees.
"""

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
