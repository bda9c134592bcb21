"""The sans-I/O relay: chain order, timing, live changes and the order/no-loss properties."""

from __future__ import annotations

import random
from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from chaos_service.ws_faults import CloseAfter, Delay, Drop, Duplicate, Reorder
from chaos_service.ws_faults.base import MessageToxic
from chaos_service.ws_faults.message import Close, Item, Message
from tests.ws_faults.relay_support import drain, msg, relay_with, texts


def test_without_toxics_every_item_goes_straight_through() -> None:
    relay, _ = relay_with()
    assert relay.empty
    assert texts(relay.push(msg("a"), 0.0)) == ["a"]
    assert relay.next_due() is None


def test_toxics_run_in_chain_order() -> None:
    # duplicate then drop-the-copies-too vs drop then duplicate: both drop everything matching
    relay, fired = relay_with(("dup", Duplicate(copies=2), 1.0), ("drop", Drop(field="type", value="x"), 1.0))
    assert texts(relay.push(msg('{"type": "x"}'), 0.0)) == []
    assert fired.names == ["dup", "drop", "drop", "drop"]
    assert texts(relay.push(msg('{"type": "y"}'), 0.0)) == ['{"type": "y"}'] * 3


def test_a_delay_holds_back_the_messages_behind_it() -> None:
    relay, _ = relay_with(("slow", Delay(field="type", value="slow", delay=100), 1.0))
    assert relay.push(msg('{"type": "slow"}'), 0.0) == []
    assert relay.push(msg('{"type": "fast"}'), 0.01) == []
    assert relay.next_due() == 0.1
    assert relay.tick(0.099) == []
    assert texts(relay.tick(0.1)) == ['{"type": "slow"}', '{"type": "fast"}']
    assert relay.held() == (0, 0)


def test_two_delays_add_up() -> None:
    relay, _ = relay_with(("a", Delay(delay=100), 1.0), ("b", Delay(delay=50), 1.0))
    relay.push(msg("m"), 0.0)
    out, now = drain(relay, 0.0)
    assert texts(out) == ["m"]
    assert abs(now - 0.15) < 1e-9


def test_a_close_waits_behind_delayed_messages() -> None:
    relay, _ = relay_with(("delay", Delay(delay=100), 1.0), ("close", CloseAfter(after=2, code=1012), 1.0))
    for t, text in enumerate(["1", "2", "3"]):
        assert relay.push(msg(text), t / 1000) == []
    out, _ = drain(relay, 0.0)
    assert texts(out) == ["1", "2", "close:1012", "3"]


def test_removing_a_toxic_releases_what_it_holds_in_order() -> None:
    relay, _ = relay_with(("delay", Delay(delay=10_000), 1.0))
    for text in "abc":
        relay.push(msg(text), 0.0)
    assert relay.held() == (3, 3)
    assert texts(relay.remove("delay", 1.0)) == ["a", "b", "c"]
    assert relay.empty
    assert relay.next_due() is None


def test_removal_feeds_the_next_stages() -> None:
    relay, _ = relay_with(("delay", Delay(delay=10_000), 1.0), ("dup", Duplicate(), 1.0))
    relay.push(msg("a"), 0.0)
    assert texts(relay.remove("delay", 1.0)) == ["a", "a"]


def test_update_releases_what_is_held_then_applies_the_new_attributes() -> None:
    relay, _ = relay_with(("delay", Delay(delay=10_000), 1.0))
    relay.push(msg("held"), 0.0)
    assert texts(relay.replace("delay", Delay(delay=100), 1.0, 1.0)) == ["held"]
    assert relay.push(msg("next"), 1.0) == []
    assert relay.next_due() == 1.1


def test_update_of_ws_close_keeps_its_count() -> None:
    relay, fired = relay_with(("close", CloseAfter(after=5, code=4000), 1.0))
    for text in "abc":
        relay.push(msg(text), 0.0)
    assert texts(relay.replace("close", CloseAfter(after=3, code=4000), 1.0, 0.0)) == ["close:4000"]
    assert fired.names == ["close"]


def test_adding_ws_close_after_zero_closes_at_once() -> None:
    relay, fired = relay_with()
    out = relay.add("close", CloseAfter(after=0, code=1001, reason="bye"), 1.0, 0.0)
    assert out == [Close(1001, "bye", both=True)]
    assert fired.names == ["close"]


def test_toxics_fire_into_the_callback_by_name() -> None:
    relay, fired = relay_with(("d", Drop(field="type", value="x"), 1.0))
    relay.push(msg('{"type": "x"}'), 0.0)
    relay.push(msg('{"type": "y"}'), 0.0)
    relay.push(Message.of(b'{"type": "x"}'), 0.0)  # binary: never matches a field
    assert fired.names == ["d"]


# -- properties ---------------------------------------------------------------------------

KINDS = ["token", "agent_thinking", "done"]
order_toxics = st.one_of(
    st.builds(
        lambda d, j, k: Delay(field="type" if k else "", value=k or "", delay=d, jitter=j),
        st.integers(0, 500),
        st.integers(0, 500),
        st.sampled_from(["", *KINDS]),
    ),
    st.builds(
        lambda c, k: Duplicate(field="type" if k else "", value=k or "", copies=c),
        st.integers(0, 3),
        st.sampled_from(["", *KINDS]),
    ),
    st.builds(lambda k: Drop(field="type" if k else "", value=k or ""), st.sampled_from(["", *KINDS])),
)
toxicities = st.sampled_from([0.0, 0.3, 1.0])
arrivals = st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 200)), max_size=40)


def _messages(arrival: list[tuple[str, int]]) -> list[tuple[float, Message]]:
    now, out = 0.0, []
    for seq, (kind, gap_ms) in enumerate(arrival):
        now += gap_ms / 1000
        out.append((now, Message.of(f'{{"type": "{kind}", "seq": {seq}}}')))
    return out


def _seqs(items: Sequence[Item]) -> list[int]:
    return [int(item.document()["seq"]) for item in items if isinstance(item, Message)]


@given(st.lists(st.tuples(order_toxics, toxicities), max_size=4), arrivals, st.integers(0, 2**32))
def test_without_reorder_surviving_messages_keep_their_relative_order(
    chain: list[tuple[MessageToxic, float]], arrival: list[tuple[str, int]], seed: int
) -> None:
    relay, _ = relay_with(*((f"t{i}", toxic, p) for i, (toxic, p) in enumerate(chain)), seed=seed)
    out = []
    for now, message in _messages(arrival):
        out.extend(relay.push(message, now))
    rest, _ = drain(relay, 1e6)
    seqs = _seqs(out + rest)
    assert seqs == sorted(seqs)


holding_toxics = st.one_of(
    st.builds(lambda d, j: Delay(delay=d, jitter=j), st.integers(0, 10_000), st.integers(0, 1000)),
    st.builds(lambda w, t: Reorder(window=w, timeout=t), st.integers(2, 6), st.integers(1, 10_000)),
    st.builds(lambda k: Reorder(field="type", value=k, window=3), st.sampled_from(KINDS)),
)


@given(
    st.lists(st.tuples(holding_toxics, toxicities), min_size=1, max_size=4),
    arrivals,
    st.randoms(use_true_random=False),
)
def test_removing_every_toxic_releases_everything_held(
    chain: list[tuple[MessageToxic, float]], arrival: list[tuple[str, int]], order: random.Random
) -> None:
    relay, _ = relay_with(*((f"t{i}", toxic, p) for i, (toxic, p) in enumerate(chain)))
    out = []
    now = 0.0
    for now, message in _messages(arrival):
        out.extend(relay.push(message, now))
    names = list(relay.names)
    order.shuffle(names)
    for name in names:
        out.extend(relay.remove(name, now))
    assert relay.empty and relay.held() == (0, 0)
    assert sorted(_seqs(out)) == list(range(len(arrival)))


@given(st.integers(2, 12), st.integers(0, 2**32))
def test_reorder_emits_a_permutation_of_the_window_that_differs_from_arrival(window: int, seed: int) -> None:
    relay, fired = relay_with(("r", Reorder(window=window), 1.0), seed=seed)
    out = []
    for seq in range(window):
        out.extend(relay.push(Message.of(f'{{"seq": {seq}}}'), 0.0))
    seqs = _seqs(out)
    assert sorted(seqs) == list(range(window))
    assert seqs != list(range(window))
    assert len(fired.names) == window
