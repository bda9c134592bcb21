"""Toxics that end connections: slow_close, timeout, reset_peer, limit_data.

Ports timeout_test.go, reset_peer_test.go and limit_data_test.go (spec §2.2, §4.4), plus
the engine's deliberate differences: a reset_peer added to an open connection still
resets, and end-of-stream is a half-close.
"""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

from tests.engine.tcp_support import (
    Upstream,
    add_toxic,
    assert_delay,
    assert_silent,
    close_outcome,
    connect,
    create_proxy,
    exchange,
    proxied_pair,
    read_to_close,
    recv_exact,
    remove_toxic,
    update_toxic,
)

# -- slow_close ---------------------------------------------------------------------------


def test_slow_close_delays_the_close_but_not_the_data(api: httpx.Client) -> None:
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        add_toxic(api, "tcp", "slow_close", attributes={"delay": 300})
        server.sendall(b"goodbye")
        server.close()
        start = time.monotonic()
        assert recv_exact(client, 7) == b"goodbye"
        assert time.monotonic() - start < 0.15
        outcome, _ = close_outcome(client)
        elapsed = time.monotonic() - start
    assert outcome == "eof"
    assert_delay(elapsed, 0.3)


def test_slow_close_upstream_delays_the_clients_half_close(api: httpx.Client) -> None:
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        add_toxic(api, "tcp", "slow_close", stream="upstream", attributes={"delay": 300})
        client.sendall(b"last words")
        client.shutdown(socket.SHUT_WR)
        start = time.monotonic()
        assert recv_exact(server, 10) == b"last words"
        outcome, _ = close_outcome(server)
        assert_delay(time.monotonic() - start, 0.3)
        assert outcome == "eof"
        server.sendall(b"reply")  # a half-close: the other direction still works
        assert recv_exact(client, 5) == b"reply"


# -- timeout ------------------------------------------------------------------------------


def test_timeout_swallows_data_and_closes_after_the_timeout(api: httpx.Client) -> None:
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        add_toxic(api, "tcp", "timeout", attributes={"timeout": 200})
        start = time.monotonic()
        server.sendall(b"never delivered")
        client_outcome, _ = close_outcome(client)
        elapsed = time.monotonic() - start
        server_outcome, _ = close_outcome(server)
    assert client_outcome == "eof"
    assert server_outcome == "eof"
    assert_delay(elapsed, 0.2, slack=0.4)


def test_timeout_zero_is_a_black_hole_that_never_closes(api: httpx.Client) -> None:
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        add_toxic(api, "tcp", "timeout", attributes={"timeout": 0})
        server.sendall(b"into the void")
        assert_silent(client, 0.5)
        client.sendall(b"the other direction still flows")
        assert recv_exact(server, 31) == b"the other direction still flows"


def test_timeout_is_an_idle_timer_that_traffic_keeps_resetting(api: httpx.Client) -> None:
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        add_toxic(api, "tcp", "timeout", stream="upstream", attributes={"timeout": 500})
        pace = threading.Event()  # never set: its wait() paces the traffic
        start = last_sent = time.monotonic()
        for _ in range(8):  # 800 ms of traffic, one byte every 100 ms
            client.sendall(b".")
            last_sent = time.monotonic()
            pace.wait(0.1)
        assert time.monotonic() - start > 0.75
        assert_silent(client, 0.05)  # still open, well past the 500 ms timeout
        outcome, _ = close_outcome(client)
        assert outcome == "eof"
        assert_delay(time.monotonic() - last_sent, 0.5, slack=0.4)
        assert read_to_close(server) == (b"", "eof")  # the swallowed bytes never arrived


def test_removing_a_timeout_toxic_closes_its_connections(api: httpx.Client) -> None:
    """TestTimeoutToxicClosesConnectionOnRemove: both ends see the close within 1 s."""
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        add_toxic(api, "tcp", "timeout", stream="upstream", attributes={"timeout": 0})
        client.sendall(b"swallowed")
        assert_silent(server, 0.1)
        remove_toxic(api, "tcp", "timeout_upstream")
        client_outcome, client_elapsed = close_outcome(client)
        server_outcome, server_elapsed = close_outcome(server)
    assert client_outcome in ("eof", "reset")
    assert server_outcome in ("eof", "reset")
    assert client_elapsed < 1.0
    assert server_elapsed < 1.0


def test_a_timeout_added_to_an_open_connection_starts_its_timer_then(api: httpx.Client) -> None:
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        exchange(client, server, b"before the toxic")
        start = time.monotonic()
        add_toxic(api, "tcp", "timeout", attributes={"timeout": 200})
        outcome, _ = close_outcome(client)
        elapsed = time.monotonic() - start
    assert outcome == "eof"
    assert_delay(elapsed, 0.2 - 0.05, slack=0.5)  # the timer starts inside the API call


def test_updating_a_black_hole_to_a_timeout_closes_after_the_new_timeout(api: httpx.Client) -> None:
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        add_toxic(api, "tcp", "timeout", attributes={"timeout": 0})
        server.sendall(b"swallowed")
        assert_silent(client, 0.2)
        start = time.monotonic()
        update_toxic(api, "tcp", "timeout_downstream", attributes={"timeout": 150})
        outcome, _ = close_outcome(client)
        elapsed = time.monotonic() - start
    assert outcome == "eof"
    assert_delay(elapsed, 0.15 - 0.05, slack=0.5)  # the timer starts inside the API call


# -- reset_peer ---------------------------------------------------------------------------


def test_reset_peer_resets_on_the_first_chunk(api: httpx.Client) -> None:
    """TestResetToxicNoTimeout: ECONNRESET on the first read after sending, then EOF."""
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        add_toxic(api, "tcp", "reset_peer", stream="upstream", attributes={"timeout": 0})
        client.sendall(b"trigger")
        outcome, elapsed = close_outcome(client)
        assert outcome == "reset"
        assert elapsed < 1.0
        assert client.recv(1024) == b""  # after the reset: end of stream
        assert read_to_close(server) == (b"", "reset")  # the trigger chunk was discarded


def test_reset_peer_waits_its_timeout_downstream(api: httpx.Client) -> None:
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        add_toxic(api, "tcp", "reset_peer", attributes={"timeout": 200})
        start = time.monotonic()
        server.sendall(b"discarded")
        outcome, _ = close_outcome(client)  # no data before the reset
        elapsed = time.monotonic() - start
    assert outcome == "reset"
    assert_delay(elapsed, 0.2)


def test_reset_peer_added_to_an_open_connection_still_resets(api: httpx.Client) -> None:
    """The engine differs from Toxiproxy here, which would send a FIN."""
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        exchange(client, server, b"before the toxic")
        add_toxic(api, "tcp", "reset_peer", stream="upstream", attributes={"timeout": 100})
        start = time.monotonic()
        client.sendall(b"trigger")
        outcome, _ = close_outcome(client)
        elapsed = time.monotonic() - start
    assert outcome == "reset"
    assert_delay(elapsed, 0.1)


def test_reset_peer_is_triggered_by_end_of_stream_too(api: httpx.Client) -> None:
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        add_toxic(api, "tcp", "reset_peer", stream="upstream", attributes={"timeout": 0})
        client.shutdown(socket.SHUT_WR)
        outcome, elapsed = close_outcome(client)
        assert outcome == "reset"
        assert elapsed < 1.0
        assert read_to_close(server) == (b"", "reset")


def test_a_triggered_reset_peer_still_resets_after_an_update(api: httpx.Client) -> None:
    """Updating the toxic while its reset is pending must not cancel the reset.

    The trigger chunk is already discarded: without the reset the client would be left
    with a silently corrupted stream (and every later chunk swallowed).
    """
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        add_toxic(api, "tcp", "reset_peer", stream="upstream", attributes={"timeout": 500})
        client.sendall(b"trigger")
        assert_silent(server, 0.1)
        start = time.monotonic()
        update_toxic(api, "tcp", "reset_peer_upstream", attributes={"timeout": 100})
        outcome, _ = close_outcome(client, timeout=3.0)
        elapsed = time.monotonic() - start
    assert outcome == "reset", f"no reset {elapsed:.3f}s after the update: the connection is {outcome}"
    assert elapsed < 1.0


def test_reset_peer_with_toxicity_zero_leaves_normal_closes_alone(api: httpx.Client) -> None:
    """Toxiproxy turns even these closes into resets (#603); the engine does not."""
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        add_toxic(api, "tcp", "reset_peer", stream="upstream", toxicity=0.0, attributes={"timeout": 0})
        exchange(client, server, b"passes")
        server.close()
        assert close_outcome(client)[0] == "eof"


# -- end of stream behind shaping toxics --------------------------------------------------


@pytest.mark.parametrize(
    ("toxic", "attributes"),
    [
        pytest.param("latency", {"latency": 200}, id="latency"),
        pytest.param("bandwidth", {"rate": 100}, id="bandwidth"),  # 20 kB at 100 KB/s
        pytest.param(
            "slicer", {"average_size": 100, "delay": 1000}, id="slicer"
        ),  # 200+ slices 1 ms apart
    ],
)
def test_end_of_stream_waits_for_the_data_ahead_of_it(
    api: httpx.Client, toxic: str, attributes: dict[str, int]
) -> None:
    payload = bytes(range(256)) * 80  # 20 480 bytes
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        add_toxic(api, "tcp", toxic, stream="upstream", attributes=attributes)
        start = time.monotonic()
        client.sendall(payload)
        client.shutdown(socket.SHUT_WR)
        data, outcome = read_to_close(server)
        elapsed = time.monotonic() - start
        assert (len(data), outcome) == (len(payload), "eof")
        assert data == payload
        assert elapsed >= 0.195, f"the end of stream arrived after {elapsed:.3f}s"
        server.sendall(b"reply")  # a half-close: the reply still reaches the client
        assert recv_exact(client, 5) == b"reply"


# -- limit_data ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "parts", "closes"),
    [
        pytest.param(100, [50], False, id="50-under-100"),
        pytest.param(100, [100], True, id="exactly-100"),
        pytest.param(100, [150], True, id="150-over-100"),
        pytest.param(100, [25, 25, 25, 25], True, id="4x25"),
        pytest.param(100, [90, 20], True, id="90-then-20"),
        pytest.param(0, [10], True, id="limit-0"),
    ],
)
def test_limit_data_passes_the_limit_then_closes(
    api: httpx.Client, limit: int, parts: list[int], closes: bool
) -> None:
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        add_toxic(api, "tcp", "limit_data", stream="upstream", attributes={"bytes": limit})
        sent = b""
        for index, size in enumerate(parts):
            part = bytes([65 + index]) * size
            passed_before = min(len(sent), limit)
            sent += part
            expected = sent[passed_before:limit]
            assert recv_exact_after_send(client, server, part, len(expected)) == expected
        if closes:
            assert read_to_close(server) == (b"", "eof")
            assert close_outcome(client)[0] == "eof"
        else:
            assert_silent(server, 0.2)
            server.sendall(b"still open")
            assert recv_exact(client, 10) == b"still open"


def recv_exact_after_send(client: socket.socket, server: socket.socket, part: bytes, size: int) -> bytes:
    client.sendall(part)
    return recv_exact(server, size)


def test_limit_data_is_per_direction(api: httpx.Client) -> None:
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        add_toxic(api, "tcp", "limit_data", attributes={"bytes": 10})
        client.sendall(b"u" * 50)
        assert recv_exact(server, 50) == b"u" * 50  # upstream bytes are not counted
        server.sendall(b"0123456789abcdef")
        data, outcome = read_to_close(client)
    assert (data, outcome) == (b"0123456789", "eof")


def test_limit_data_counts_per_connection(api: httpx.Client) -> None:
    with Upstream() as upstream:
        address = create_proxy(api, upstream.address)
        add_toxic(api, "tcp", "limit_data", attributes={"bytes": 10})
        for name in (b"first", b"second"):
            with connect(address) as client, upstream.accept() as server:
                server.sendall(name + b" connection!")
                assert read_to_close(client) == ((name + b" connection!")[:10], "eof")


def test_limit_data_count_survives_an_update(api: httpx.Client) -> None:
    """limit_data_test "may be restarted": 90 bytes, an update, then 20 ⇒ 90 + 10."""
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        add_toxic(api, "tcp", "limit_data", stream="upstream", attributes={"bytes": 100})
        assert recv_exact_after_send(client, server, b"a" * 90, 90) == b"a" * 90
        update_toxic(api, "tcp", "limit_data_upstream", attributes={"bytes": 100})
        assert recv_exact_after_send(client, server, b"b" * 20, 10) == b"b" * 10
        assert read_to_close(server) == (b"", "eof")
