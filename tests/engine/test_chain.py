"""The toxic chain, driven in virtual time: no sockets, no sleeping."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaos_service.engine.chain import Chain
from chaos_service.toxics import Bandwidth, LimitData, ResetPeer, Slicer, SlowClose, Timeout, build_toxic
from chaos_service.toxics.latency import Latency
from tests.support.virtual_time import RecordingSink, VirtualScheduler


class Harness:
    def __init__(self, seed: int = 0, high_water: int = 1 << 20) -> None:
        self.clock = VirtualScheduler()
        self.sink = RecordingSink(self.clock)
        self.pressure: list[bool] = []
        self.chain = Chain(self.clock, self.sink, random.Random(seed), self.pressure.append, high_water=high_water)

    @property
    def t0(self) -> float:
        return 1000.0


def test_an_empty_chain_writes_at_once() -> None:
    h = Harness()
    h.chain.push(b"abc")
    assert h.sink.writes == [(h.t0, b"abc")]
    assert h.chain.buffered == 0


def test_latency_delays_and_keeps_order() -> None:
    h = Harness()
    h.chain.append("lat", Latency(latency=100), 1.0)
    h.chain.push(b"a")
    h.clock.advance(0.05)
    h.chain.push(b"b")
    assert h.sink.writes == []
    h.clock.run_all()
    assert h.sink.writes == [(pytest.approx(h.t0 + 0.1), b"a"), (pytest.approx(h.t0 + 0.15), b"b")]


def test_two_latency_toxics_stack() -> None:
    h = Harness()
    h.chain.append("one", Latency(latency=500), 1.0)
    h.chain.append("two", Latency(latency=500), 1.0)
    h.chain.push(b"x")
    h.clock.run_all()
    assert h.sink.writes == [(pytest.approx(h.t0 + 1.0), b"x")]


def test_a_chunk_waits_behind_a_slower_earlier_one() -> None:
    h = Harness(seed=1)
    h.chain.append("lat", Latency(latency=100, jitter=90), 1.0)
    for index in range(50):
        h.chain.push(bytes([index]))
        h.clock.advance(0.001)
    h.clock.run_all()
    assert h.sink.data == bytes(range(50))
    times = [at for at, _ in h.sink.writes]
    assert times == sorted(times)


def test_removing_a_toxic_releases_what_it_holds_at_once() -> None:
    h = Harness()
    h.chain.append("lat", Latency(latency=10_000), 1.0)
    h.chain.push(b"held")
    h.clock.advance(1.0)
    h.chain.remove("lat")
    assert h.sink.writes == [(h.t0 + 1.0, b"held")]
    assert h.clock.pending == 0
    assert h.chain.empty


def test_bandwidth_zero_stalls_until_removed() -> None:
    h = Harness()
    h.chain.append("stall", Bandwidth(rate=0), 1.0)
    h.chain.push(b"waiting")
    h.clock.advance(3600)
    assert h.sink.writes == []
    h.chain.remove("stall")
    assert h.sink.data == b"waiting"


def test_toxicity_zero_never_applies_and_one_always_does() -> None:
    never = Harness()
    never.chain.append("lat", Latency(latency=100), 0.0)
    never.chain.push(b"fast")
    assert never.sink.data == b"fast"
    always = Harness()
    always.chain.append("lat", Latency(latency=100), 1.0)
    always.chain.push(b"slow")
    assert always.sink.data == b""


def test_toxicity_is_a_coin_flip_per_chain() -> None:
    applied = 0
    for seed in range(200):
        h = Harness(seed=seed)
        h.chain.append("lat", Latency(latency=100), 0.3)
        h.chain.push(b"?")
        applied += h.sink.data == b""
    assert 30 < applied < 90


def test_timeout_closes_after_idle_time_and_swallows_data() -> None:
    h = Harness()
    h.chain.append("t", Timeout(timeout=200), 1.0)
    h.clock.advance(0.15)
    h.chain.push(b"swallowed")  # moves the deadline to +0.35
    h.clock.advance(0.15)
    assert h.sink.ends == []
    h.clock.run_all()
    assert h.sink.ends == [(pytest.approx(h.t0 + 0.35), True)]
    assert h.sink.data == b""
    assert h.chain.buffered == 0


def test_removing_an_active_timeout_closes_the_connection() -> None:
    h = Harness()
    h.chain.append("t", Timeout(timeout=0), 1.0)
    h.chain.push(b"lost")
    h.chain.remove("t")
    assert h.sink.ends == [(h.t0, True)]


def test_removing_an_inactive_timeout_leaves_the_connection_open() -> None:
    h = Harness()
    h.chain.append("t", Timeout(timeout=0), 0.0)
    h.chain.remove("t")
    assert h.sink.ends == []


def test_reset_peer_resets_after_its_timeout() -> None:
    h = Harness()
    h.chain.append("r", ResetPeer(timeout=100), 1.0)
    h.chain.push(b"first")
    h.clock.run_all()
    assert h.sink.resets == [pytest.approx(h.t0 + 0.1)]
    assert h.sink.data == b""


def test_updating_a_bandwidth_toxic_restarts_its_schedule() -> None:
    h = Harness()
    h.chain.append("bw", Bandwidth(rate=1), 1.0)  # 1000 B/s
    h.chain.push(b"x" * 5000)
    h.chain.replace("bw", Bandwidth(rate=10_000), 1.0)
    h.chain.push(b"y" * 10_000)
    h.clock.advance(0.01)
    assert h.sink.data == b"x" * 5000 + b"y" * 10_000


def test_removing_a_triggered_reset_peer_resets_at_once() -> None:
    h = Harness()
    h.chain.append("r", ResetPeer(timeout=10_000), 1.0)
    h.chain.push(b"trigger")
    h.chain.remove("r")
    assert h.sink.resets == [h.t0]


def test_limit_data_closes_after_the_limit_and_survives_an_update() -> None:
    h = Harness()
    h.chain.append("lim", LimitData(bytes=100), 1.0)
    h.chain.push(b"a" * 90)
    h.chain.replace("lim", LimitData(bytes=100), 1.0)
    h.chain.push(b"b" * 20)
    assert h.sink.data == b"a" * 90 + b"b" * 10
    assert h.sink.ends == [(h.t0, True)]
    h.chain.push(b"after the end")
    assert h.sink.data == b"a" * 90 + b"b" * 10
    assert h.chain.buffered == 0


def test_end_of_stream_follows_the_data_and_slow_close_delays_it() -> None:
    h = Harness()
    h.chain.append("lat", Latency(latency=100), 1.0)
    h.chain.append("slow", SlowClose(delay=300), 1.0)
    h.chain.push(b"last words")
    h.chain.push_eof()
    h.clock.run_all()
    assert h.sink.writes == [(pytest.approx(h.t0 + 0.1), b"last words")]
    assert h.sink.ends == [(pytest.approx(h.t0 + 0.4), False)]


def test_a_toxic_added_later_applies_to_later_data_only() -> None:
    h = Harness()
    h.chain.push(b"before")
    h.chain.append("lat", Latency(latency=100), 1.0)
    h.chain.push(b"after")
    assert h.sink.writes == [(h.t0, b"before")]
    h.clock.run_all()
    assert h.sink.data == b"beforeafter"


def test_backpressure_is_signalled_above_high_water_and_released_below_low_water() -> None:
    h = Harness(high_water=1000)
    h.chain.append("lat", Latency(latency=100), 1.0)
    for _ in range(12):
        h.chain.push(b"x" * 100)
    assert h.pressure == [True]
    h.clock.run_all()
    assert h.pressure == [True, False]
    assert h.chain.buffered == 0


def test_dispose_cancels_every_timer_and_writes_nothing_more() -> None:
    h = Harness()
    h.chain.append("lat", Latency(latency=100), 1.0)
    h.chain.append("t", Timeout(timeout=50), 1.0)
    h.chain.push(b"x")
    h.chain.dispose()
    assert h.clock.pending == 0
    h.clock.run_all()
    assert h.sink.writes == [] and h.sink.ends == []


_TOXICS = {
    "latency": lambda: Latency(latency=50, jitter=40),
    "slicer": lambda: Slicer(average_size=3, size_variation=2, delay=500),
    "bandwidth": lambda: Bandwidth(rate=10),
    "stall": lambda: Bandwidth(rate=0),
    "noop": lambda: build_toxic("noop", {}),
    "slow_close": lambda: SlowClose(delay=20),
}

_operations = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.binary(min_size=1, max_size=64)),
        st.tuples(st.just("add"), st.sampled_from(sorted(_TOXICS))),
        st.tuples(st.just("update"), st.integers(0, 5)),
        st.tuples(st.just("remove"), st.integers(0, 5)),
        st.tuples(st.just("wait"), st.floats(0, 0.2)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(operations=_operations, seed=st.integers(0, 1000))
def test_no_byte_is_lost_reordered_or_duplicated_whatever_the_churn(
    operations: list[tuple[str, object]], seed: int
) -> None:
    h = Harness(seed=seed)
    sent = b""
    names: list[tuple[str, str]] = []
    for serial, (kind, arg) in enumerate(operations):
        if kind == "push":
            assert isinstance(arg, bytes)
            sent += arg
            h.chain.push(arg)
        elif kind == "add":
            name = f"{arg}-{serial}"
            names.append((name, str(arg)))
            h.chain.append(name, _TOXICS[str(arg)](), 0.7)
        elif kind in ("update", "remove") and names:
            assert isinstance(arg, int)
            name, kind_of_toxic = names[arg % len(names)]
            if kind == "update":
                h.chain.replace(name, _TOXICS[kind_of_toxic](), 0.7)
            else:
                names.remove((name, kind_of_toxic))
                h.chain.remove(name)
        elif kind == "wait":
            assert isinstance(arg, float)
            h.clock.advance(arg)
    for name, _ in list(names):
        h.chain.remove(name)
    h.clock.run_all()
    assert h.sink.data == sent
    assert h.chain.buffered == 0
    assert h.clock.pending == 0
