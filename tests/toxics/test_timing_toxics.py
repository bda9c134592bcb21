"""timeout, reset_peer, slow_close and noop: the toxics that act on time and ends."""

import random

from chaos_service.toxics import Chunk, Deadline, Emit, EndStream, Noop, Removal, ResetPeer, SlowClose, Timeout


def test_timeout_arms_an_idle_deadline_that_each_chunk_moves() -> None:
    toxic = Timeout(timeout=200)
    assert toxic.start(10.0, None) == [Deadline(10.2)]
    assert toxic.on_chunk(Chunk(b"swallowed", 11.0), None, random.Random(0)) == [Deadline(11.2)]


def test_timeout_zero_is_a_black_hole_without_deadline() -> None:
    toxic = Timeout(timeout=0)
    assert toxic.start(10.0, None) == []
    assert toxic.on_chunk(Chunk(b"gone", 11.0), None, random.Random(0)) == []
    assert toxic.on_removal(None) is Removal.CLOSE


def test_reset_peer_triggers_once_on_the_first_chunk() -> None:
    toxic = ResetPeer(timeout=100)
    state = toxic.new_state()
    assert toxic.on_chunk(Chunk(b"first", 1.0), state, random.Random(0)) == [Deadline(1.1, reset=True)]
    assert toxic.on_chunk(Chunk(b"second", 1.05), state, random.Random(0)) == []


def test_a_triggered_reset_peer_resets_whatever_is_done_to_it() -> None:
    toxic = ResetPeer(timeout=500)
    state = toxic.new_state()
    assert toxic.on_removal(state) is Removal.KEEP
    assert toxic.start(0.0, state) == []
    toxic.on_chunk(Chunk(b"first", 1.0), state, random.Random(0))
    assert ResetPeer(timeout=100).start(1.2, state) == [Deadline(1.1, reset=True)]
    assert toxic.on_removal(state) is Removal.RESET


def test_reset_peer_triggers_on_end_of_stream_too() -> None:
    toxic = ResetPeer(timeout=0)
    assert toxic.on_eof(2.0, toxic.new_state()) == [Deadline(2.0, reset=True)]


def test_slow_close_delays_only_the_end() -> None:
    toxic = SlowClose(delay=500)
    assert toxic.on_chunk(Chunk(b"data", 1.0), None, random.Random(0)) == [Emit(b"data", 1.0)]
    assert toxic.on_eof(3.0, None) == [EndStream(3.5)]


def test_noop_passes_through() -> None:
    assert Noop().on_chunk(Chunk(b"x", 1.0), None, random.Random(0)) == [Emit(b"x", 1.0)]
