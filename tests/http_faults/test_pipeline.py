"""The event pipeline and its runs, on a real event loop but without sockets."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Coroutine
from typing import Any

import pytest

from chaos_service.http_faults import SseCut, SseDelay, SseMalformed, SseStall
from chaos_service.http_faults.base import HttpToxic, StreamToxic
from chaos_service.http_faults.pipeline import EventPipeline, Run, Runs, StreamFinished
from chaos_service.http_faults.sse import KEEPALIVE
from chaos_service.http_faults.sse_malformed import MALFORMED_EVENT
from tests.http_faults.support import event


class Harness:
    def __init__(self, *toxics: tuple[str, StreamToxic]) -> None:
        self.runs = Runs()
        self.written: list[bytes] = []
        self.fired: list[str] = []
        self.wrote = asyncio.Event()
        runs = [self.runs.open(name, toxic, toxic.new_state()) for name, toxic in toxics]
        self.pipeline = EventPipeline(runs, self.write, random.Random(0), self.fired.append)

    async def write(self, data: bytes) -> None:
        self.written.append(data)
        self.wrote.set()

    async def wait_written(self, count: int) -> None:
        for _ in range(1000):
            if len(self.written) >= count:
                return
            self.wrote.clear()
            await asyncio.wait_for(self.wrote.wait(), 5)
        raise AssertionError("not written")


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 10))


def test_events_pass_through_stages_in_chain_order() -> None:
    async def main() -> None:
        h = Harness(("bad", SseMalformed(after=1)), ("cut", SseCut(after=3)))
        await h.pipeline.start()
        with pytest.raises(StreamFinished) as finished:
            for n in range(5):
                await h.pipeline.push(event(n))
        assert not finished.value.reset
        assert h.written == [event(0), MALFORMED_EVENT, event(1)]  # the cut counts the inserted event
        assert h.fired == ["bad", "cut"]

    run(main())


def test_comments_and_fragments_bypass_the_toxics() -> None:
    async def main() -> None:
        h = Harness(("cut", SseCut(after=1)))
        await h.pipeline.push(b": ping\n\n")
        await h.pipeline.push_fragment(b"data: part")
        assert h.written == [b": ping\n\n", b"data: part"] and h.fired == []

    run(main())


def test_removing_a_stall_releases_it_at_once_and_loses_nothing() -> None:
    async def main() -> None:
        h = Harness(("stall", SseStall(after=1)), ("cut", SseCut(after=10)))
        pushing = asyncio.ensure_future(h.pipeline.push(event(1)))
        await h.wait_written(1)
        await asyncio.sleep(0)
        assert not pushing.done()  # stalled after the first event
        h.runs.removed("stall")
        await pushing
        await h.pipeline.push(event(2))
        assert h.written == [event(1), event(2)]
        assert len(h.runs) == 1  # the cut's run only

    run(main())


def test_updating_a_toxic_releases_its_pause_and_applies_the_new_value() -> None:
    async def main() -> None:
        h = Harness(("pace", SseDelay(delay=60_000)))
        pushing = asyncio.ensure_future(h.pipeline.push(event(1)))
        for _ in range(3):
            await asyncio.sleep(0)
        h.runs.updated("pace", SseDelay(delay=0))
        await pushing
        started = time.monotonic()
        await h.pipeline.push(event(2))
        assert time.monotonic() - started < 1
        assert h.written == [event(1), event(2)]

    run(main())


def test_a_stall_sends_keepalives_on_schedule_then_carries_on() -> None:
    async def main() -> None:
        h = Harness(("stall", SseStall(after=0, duration=55, keepalive=10)))
        started = time.monotonic()
        await h.pipeline.start()
        await h.pipeline.push(event(1))
        assert time.monotonic() - started >= 0.05
        assert h.written == [KEEPALIVE] * 5 + [event(1)]

    run(main())


def test_a_pause_waits_its_time() -> None:
    async def main() -> None:
        run_ = Run("d", SseDelay())
        started = time.monotonic()
        await run_.pause(0.05)
        assert 0.048 <= time.monotonic() - started < 1

    run(main())


def test_a_removed_run_does_not_pause() -> None:
    async def main() -> None:
        runs = Runs()
        toxic: HttpToxic = SseStall()
        held = runs.open("s", toxic)
        runs.removed("s")
        await held.pause(math.inf)
        assert held.removed and len(runs) == 0

    run(main())


def test_clearing_releases_every_run() -> None:
    async def main() -> None:
        runs = Runs()
        held = [runs.open(name, SseStall()) for name in ("a", "b", "a")]
        waiting = asyncio.gather(*(r.pause(math.inf) for r in held))
        await asyncio.sleep(0)
        runs.clear()
        await waiting
        assert len(runs) == 0

    run(main())
