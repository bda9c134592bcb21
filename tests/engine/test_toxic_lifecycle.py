"""Toxics on live connections: chains, add/update/remove, ttl, disable/enable and reset.

Ports spec §2.3 and the lifecycle tests of toxic_test.go / link_test.go (§4.3, §4.4):
toxic changes apply to open connections at once, removal loses no data, and no API call
hangs while connections are broken.
"""

from __future__ import annotations

import functools
import socket
import threading
import time

import httpx

from tests.engine.tcp_support import (
    API_BOUND,
    IO_TIMEOUT,
    Upstream,
    add_toxic,
    assert_delay,
    assert_silent,
    close_outcome,
    connect,
    counter_bytes,
    create_proxy,
    exchange,
    proxied_pair,
    read_to_close,
    recv_exact,
    remove_toxic,
    round_trip,
    start_worker,
    timed_call,
    toxic_names,
    update_toxic,
)
from tests.support.engine import EchoServer

# -- chains -------------------------------------------------------------------------------


def test_a_chain_runs_its_toxics_in_creation_order(api: httpx.Client) -> None:
    """limit_data then slow_close: the close limit_data makes is delayed by slow_close."""
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        add_toxic(api, "tcp", "limit_data", stream="upstream", attributes={"bytes": 5})
        add_toxic(api, "tcp", "slow_close", stream="upstream", attributes={"delay": 400})
        start = time.monotonic()
        client.sendall(b"0123456789")
        data, outcome = read_to_close(server)
        elapsed = time.monotonic() - start
    assert (data, outcome) == (b"01234", "eof")
    assert_delay(elapsed, 0.4)


def test_the_reverse_order_gives_the_other_result(api: httpx.Client) -> None:
    """slow_close then limit_data: the close is made after slow_close, so it is not delayed."""
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        add_toxic(api, "tcp", "slow_close", stream="upstream", attributes={"delay": 400})
        add_toxic(api, "tcp", "limit_data", stream="upstream", attributes={"bytes": 5})
        start = time.monotonic()
        client.sendall(b"0123456789")
        data, outcome = read_to_close(server)
        elapsed = time.monotonic() - start
    assert (data, outcome) == (b"01234", "eof")
    assert elapsed < 0.3


def test_upstream_and_downstream_chains_are_separate(api: httpx.Client) -> None:
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        add_toxic(api, "tcp", "limit_data", stream="upstream", attributes={"bytes": 1000})
        add_toxic(api, "tcp", "latency", stream="downstream", attributes={"latency": 200})
        add_toxic(api, "tcp", "timeout", stream="upstream", name="later", attributes={"timeout": 0})
        message = b"downstream is only delayed"
        server.sendall(message)
        start = time.monotonic()
        assert recv_exact(client, len(message)) == message
        assert_delay(time.monotonic() - start, 0.2)
        client.sendall(b"upstream is swallowed")
        assert_silent(server, 0.3)


# -- add, update, remove on open connections ----------------------------------------------


def test_add_update_and_remove_apply_to_an_open_connection(
    api: httpx.Client, echo_server: EchoServer
) -> None:
    address = create_proxy(api, echo_server.address)
    with connect(address) as client:
        assert round_trip(client) < 0.1
        add_toxic(api, "tcp", "latency", attributes={"latency": 200})
        assert_delay(round_trip(client), 0.2)
        update_toxic(api, "tcp", "latency_downstream", attributes={"latency": 400})
        assert_delay(round_trip(client), 0.4)
        remove_toxic(api, "tcp", "latency_downstream")
        assert round_trip(client) < 0.1


def test_removing_a_toxic_releases_what_it_holds_at_once(api: httpx.Client) -> None:
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        add_toxic(api, "tcp", "latency", attributes={"latency": 3000})
        server.sendall(b"held")
        assert_silent(client, 0.1)
        start = time.monotonic()
        remove_toxic(api, "tcp", "latency_downstream")
        assert recv_exact(client, 4) == b"held"
        assert time.monotonic() - start < 0.5


def test_updating_a_toxic_releases_what_it_holds_at_once(api: httpx.Client) -> None:
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        add_toxic(api, "tcp", "bandwidth", attributes={"rate": 0})
        server.sendall(b"held" * 1000)
        assert_silent(client, 0.1)
        start = time.monotonic()
        update_toxic(api, "tcp", "bandwidth_downstream", attributes={"rate": 100_000})
        assert recv_exact(client, 4000) == b"held" * 1000
        assert time.monotonic() - start < 0.5


def test_no_data_is_lost_while_toxics_come_and_go(api: httpx.Client, echo_server: EchoServer) -> None:
    """TestNoDataDropped: a counter streams through while latency toxics churn.

    The churn hands the sender a batch after each add and each remove, so the stream is
    in flight through every change, with and without the toxics.
    """
    address = create_proxy(api, echo_server.address)
    churned = threading.Event()
    batches = threading.Semaphore(0)
    total, batch = 200_000, 500  # 4-byte integers; 400 batches, one per churn step

    def churn() -> None:
        try:
            for _ in range(100):
                for stream in ("upstream", "downstream"):
                    add_toxic(api, "tcp", "latency", stream=stream, attributes={"latency": 20})
                    batches.release()
                for stream in ("upstream", "downstream"):
                    remove_toxic(api, "tcp", f"latency_{stream}")
                    batches.release()
        finally:
            churned.set()

    with connect(address, timeout=10) as client:

        def send() -> None:
            for start in range(0, total, batch):
                if not churned.is_set():
                    batches.acquire(timeout=1.0)
                client.sendall(counter_bytes(start, batch))
            client.shutdown(socket.SHUT_WR)

        churner = start_worker(churn)
        sender = start_worker(send)
        received, outcome = read_to_close(client, limit=total * 4)
        churner.finish(30)
        sender.finish(10)
    assert outcome == "eof"
    assert len(received) == total * 4, f"sent {total * 4} bytes, received {len(received)}"
    expected = counter_bytes(0, total)
    if received != expected:
        first = next(i for i, (a, b) in enumerate(zip(received, expected, strict=True)) if a != b)
        raise AssertionError(f"stream differs from byte {first} (integer {first // 4})")


def test_echo_round_trips_succeed_while_noop_toxics_churn(
    api: httpx.Client, echo_server: EchoServer
) -> None:
    """TestToxicAddRemove: 100 round trips while noop toxics are added and removed."""
    address = create_proxy(api, echo_server.address)
    stop = threading.Event()

    def churn() -> None:
        for _ in range(1000):
            if stop.is_set():
                return
            add_toxic(api, "tcp", "noop", stream="upstream")
            add_toxic(api, "tcp", "noop", stream="downstream")
            remove_toxic(api, "tcp", "noop_upstream")
            remove_toxic(api, "tcp", "noop_downstream")

    churner = start_worker(churn)
    try:
        with connect(address) as client:
            for i in range(100):
                message = f"message {i}".encode()
                assert round_trip(client, message) < 1.0
    finally:
        stop.set()
        churner.finish(10)


def test_a_connection_persists_through_toxics_and_resets(
    api: httpx.Client, echo_server: EchoServer
) -> None:
    """TestPersistentConnections."""
    address = create_proxy(api, echo_server.address)
    with connect(address) as client:
        round_trip(client, b"first")
        add_toxic(api, "tcp", "noop", stream="upstream")
        add_toxic(api, "tcp", "noop", stream="downstream")
        round_trip(client, b"with toxics")
        assert api.post("/reset").status_code == 204
        round_trip(client, b"after reset")
        assert api.post("/reset").status_code == 204
        round_trip(client, b"after another reset")
    assert echo_server.accepted == 1


# -- removal never hangs ------------------------------------------------------------------


def test_removing_a_latency_in_front_of_a_black_hole_does_not_hang(api: httpx.Client) -> None:
    """TestTimeoutToxicDoesNotCauseHang."""
    stop = threading.Event()
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        add_toxic(api, "tcp", "latency", stream="upstream", attributes={"latency": 10})
        add_toxic(api, "tcp", "timeout", stream="upstream", attributes={"timeout": 0})

        def flood() -> None:
            for _ in range(20_000):
                if stop.is_set():
                    return
                try:
                    client.sendall(b"x" * 4096)
                except OSError:
                    return

        flooder = start_worker(flood)
        try:
            response, elapsed = timed_call(lambda: api.delete("/proxies/tcp/toxics/latency_upstream"))
            assert response.status_code == 204
            assert elapsed < API_BOUND
            response, elapsed = timed_call(lambda: api.delete("/proxies/tcp/toxics/timeout_upstream"))
            assert response.status_code == 204
            assert elapsed < API_BOUND
        finally:
            stop.set()
            flooder.finish(IO_TIMEOUT)
        assert close_outcome(server)[0] in ("eof", "reset")  # the timeout's removal closed it


def test_removing_stalled_bandwidth_toxics_of_a_closed_client_does_not_hang(api: httpx.Client) -> None:
    """link_test: removing two `bandwidth rate 0` toxics with data queued does not hang."""
    with Upstream() as upstream:
        address = create_proxy(api, upstream.address)
        add_toxic(api, "tcp", "bandwidth", name="stall1", attributes={"rate": 0})
        add_toxic(api, "tcp", "bandwidth", name="stall2", attributes={"rate": 0})
        with connect(address) as client, upstream.accept() as server:
            server.sendall(b"queued" * 20_000)
            assert_silent(client, 0.1)
            client.close()
            for path in ("/proxies/tcp/toxics/stall1", "/proxies/tcp/toxics/stall2"):
                response, elapsed = timed_call(functools.partial(api.delete, path))
                assert response.status_code == 204
                assert elapsed < API_BOUND
            assert read_to_close(server)[1] in ("eof", "reset")
        with connect(address) as client, upstream.accept() as server:
            exchange(client, server, b"the proxy still works")


def test_adding_and_removing_around_short_lived_connections_does_not_hang(api: httpx.Client) -> None:
    """TestLatencyToxicCloseRace, shortened."""
    with Upstream() as upstream:
        address = create_proxy(api, upstream.address)
        for _ in range(30):
            add_toxic(api, "tcp", "latency", stream="upstream", attributes={"latency": 10})
            with connect(address) as client, upstream.accept():
                client.sendall(b"hello")
            response, elapsed = timed_call(lambda: api.delete("/proxies/tcp/toxics/latency_upstream"))
            assert response.status_code == 204
            assert elapsed < API_BOUND
        with connect(address) as client, upstream.accept() as server:
            exchange(client, server, b"still serving")


def test_removing_a_timeout_that_never_applied_keeps_the_connection(
    api: httpx.Client, echo_server: EchoServer
) -> None:
    """Only connections a timeout was active on are closed by its removal (toxicity 0 here)."""
    address = create_proxy(api, echo_server.address)
    add_toxic(api, "tcp", "timeout", stream="upstream", toxicity=0.0, attributes={"timeout": 0})
    with connect(address) as client:
        assert round_trip(client) < 0.5
        remove_toxic(api, "tcp", "timeout_upstream")
        assert round_trip(client, b"still connected") < 0.5
    assert echo_server.accepted == 1


# -- ttl ----------------------------------------------------------------------------------


def test_a_toxic_with_a_ttl_stops_applying_by_itself(api: httpx.Client, echo_server: EchoServer) -> None:
    address = create_proxy(api, echo_server.address)
    with connect(address) as client:
        start = time.monotonic()
        add_toxic(api, "tcp", "latency", attributes={"latency": 300}, ttl=0.5)
        assert_delay(round_trip(client), 0.3)
        durations = []
        for _ in range(10):  # each delayed round trip takes ~300 ms: bounded to ~3 s
            durations.append(round_trip(client))
            if durations[-1] < 0.1:
                break
        fast_at = time.monotonic() - start
        assert durations[-1] < 0.1, f"still delayed: {durations}"
        assert fast_at >= 0.45, f"fast again after {fast_at:.3f}s, before the ttl"
        assert round_trip(client) < 0.1
    assert toxic_names(api) == []


def test_a_timeout_toxic_with_a_ttl_closes_its_connections_when_it_expires(api: httpx.Client) -> None:
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        start = time.monotonic()
        add_toxic(api, "tcp", "timeout", stream="upstream", attributes={"timeout": 0}, ttl=0.5)
        client.sendall(b"swallowed")
        outcome, _ = close_outcome(client)
        elapsed = time.monotonic() - start
        assert outcome in ("eof", "reset")
        assert_delay(elapsed, 0.5, slack=0.5)
        assert read_to_close(server) == (b"", "eof")
