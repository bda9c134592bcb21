"""Flow control: a fast sender and a stalled reader must not make the engine buffer without bound.

The engine's chain stops reading a source above a 16 MiB high-water mark per direction,
and a link stops reading while its destination's write buffer is full. These tests run
their own engine so that its memory (VmRSS) is theirs alone to measure.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest

from tests.engine.tcp_support import (
    Upstream,
    add_toxic,
    connect,
    create_proxy,
    exchange,
    recv_exact,
    remove_toxic,
    start_worker,
)
from tests.support.engine import EngineProcess

MIB = 1024 * 1024
#: What the client tries to push through while nobody reads.
TOTAL_MIB = 200
#: Allowed growth of the engine's resident memory: 16 MiB of chain plus socket buffers,
#: with room for the allocator; without flow control it would be ~TOTAL_MIB.
MAX_GROWTH = 80 * MIB


@pytest.fixture
def own_engine() -> Iterator[EngineProcess]:
    engine = EngineProcess("--seed", "3").start()
    yield engine
    engine.stop()


def rss(pid: int) -> int:
    """Resident memory of a process, in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


@pytest.mark.parametrize(
    ("stream", "toxic", "attributes"),
    [
        # The destination's full write buffer stops the reads.
        pytest.param("upstream", "latency", {"latency": 10}, id="latency-upstream"),
        pytest.param("downstream", "latency", {"latency": 10}, id="latency-downstream"),
        # The bytes pile up inside the chain: its high-water mark stops the reads.
        pytest.param("upstream", "bandwidth", {"rate": 1000}, id="bandwidth-upstream"),
    ],
)
def test_a_stalled_reader_holds_the_engines_memory_bounded(
    own_engine: EngineProcess, stream: str, toxic: str, attributes: dict[str, int]
) -> None:
    block = os.urandom(MIB)
    stop = threading.Event()
    blocks_sent: list[int] = [0]
    with own_engine.client() as api, Upstream() as upstream:
        address = create_proxy(api, upstream.address)
        name = add_toxic(api, "tcp", toxic, stream=stream, attributes=attributes)
        with connect(address) as client, upstream.accept() as server:
            exchange(client, server, b"warm up")
            writer, reader = (client, server) if stream == "upstream" else (server, client)
            writer.settimeout(0.2)  # a blocked send wakes up to check `stop`

            def send() -> None:
                for _ in range(TOTAL_MIB):
                    view = memoryview(block)
                    while view:
                        if stop.is_set():
                            return
                        try:
                            view = view[writer.send(view) :]
                        except TimeoutError:
                            continue
                    blocks_sent[0] += 1

            baseline = peak = rss(own_engine.pid)
            sender = start_worker(send)
            try:
                pace = threading.Event()  # never set: its wait() spaces the samples
                for _ in range(25):  # the reader stalls for ~2.5 s
                    pace.wait(0.1)
                    peak = max(peak, rss(own_engine.pid))
                stalled_at = blocks_sent[0]
                if toxic == "bandwidth":  # else draining 200 MB at 1 MB/s would take minutes
                    remove_toxic(api, "tcp", name)
                reader.settimeout(10)
                start = time.monotonic()
                for index in range(TOTAL_MIB):
                    assert recv_exact(reader, MIB) == block, f"block {index} differs"
                drained_in = time.monotonic() - start
                sender.finish(10)
            finally:
                stop.set()
            assert blocks_sent[0] == TOTAL_MIB
    growth = peak - baseline
    assert growth < MAX_GROWTH, f"the engine grew by {growth / MIB:.1f} MiB while the reader stalled"
    assert stalled_at < TOTAL_MIB // 2, f"{stalled_at} MiB accepted while nobody read: no back-pressure"
    assert drained_in < 30
