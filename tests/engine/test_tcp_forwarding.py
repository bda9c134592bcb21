"""Forwarding without toxics: bytes, end-of-stream, resets, unreachable upstreams.

Ports Toxiproxy's proxy_test.go data tests (spec §4.2) and the engine's connection
handling (spec §1.6), including where the engine deliberately differs: end-of-stream is
a half-close, not a teardown.
"""

from __future__ import annotations

import hashlib
import os
import selectors
import socket

import httpx

from tests.engine.tcp_support import (
    IO_TIMEOUT,
    Upstream,
    abort,
    close_outcome,
    connect,
    create_proxy,
    exchange,
    proxied_pair,
    read_to_close,
    recv_exact,
    round_trip,
    start_worker,
    unused_port,
)
from tests.support.engine import EchoServer


def test_a_simple_message_reaches_the_upstream_and_comes_back(
    api: httpx.Client, echo_server: EchoServer
) -> None:
    address = create_proxy(api, echo_server.address)
    with connect(address) as client:
        client.sendall(b"hello world")
        assert recv_exact(client, 11) == b"hello world"
    assert echo_server.accepted == 1


def test_a_64_kib_message_arrives_intact_at_the_upstream(api: httpx.Client) -> None:
    message = os.urandom(32 * 1024).hex().encode()  # 64 KiB of hex, as in proxy_test.go
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        client.sendall(message)
        assert recv_exact(server, len(message)) == message
        server.sendall(message[::-1])
        assert recv_exact(client, len(message)) == message[::-1]


def test_a_message_in_two_parts_arrives_as_one_stream(api: httpx.Client) -> None:
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        client.sendall(b"hello ")
        assert recv_exact(server, 6) == b"hello "
        client.sendall(b"world")
        assert recv_exact(server, 5) == b"world"


def test_ten_megabytes_pass_both_ways_unchanged(api: httpx.Client, echo_server: EchoServer) -> None:
    payload = os.urandom(10 * 1024 * 1024)
    address = create_proxy(api, echo_server.address)
    with connect(address, timeout=15) as client:
        sender = start_worker(lambda: client.sendall(payload))
        received = hashlib.sha256()
        got = 0
        while got < len(payload):
            part = client.recv(1 << 20)
            assert part, f"end of stream after {got} bytes"
            received.update(part)
            got += len(part)
        sender.finish(15)
    assert got == len(payload)
    assert received.hexdigest() == hashlib.sha256(payload).hexdigest()


def test_concurrent_connections_do_not_mix_their_bytes(
    api: httpx.Client, echo_server: EchoServer
) -> None:
    address = create_proxy(api, echo_server.address)
    clients = [connect(address) for _ in range(20)]
    try:
        messages = [f"client {i} ".encode() * (100 + i) for i in range(len(clients))]
        for client, message in zip(clients, messages, strict=True):
            client.sendall(message)
        for client, message in zip(clients, messages, strict=True):
            assert recv_exact(client, len(message)) == message
    finally:
        for client in clients:
            client.close()
    assert echo_server.accepted == 20


def test_echo_round_trips_add_little_latency(api: httpx.Client, echo_server: EchoServer) -> None:
    """TestProxyLatency, loosened for Python: 100 round trips, 200 hops through the engine."""
    address = create_proxy(api, echo_server.address)
    with connect(address) as client:
        round_trip(client)  # warm up
        total = sum(round_trip(client, b"x" * 32) for _ in range(100))
    assert total / 100 < 0.02, f"mean round trip {total * 10:.1f} ms"


def test_an_unreachable_upstream_gives_the_client_a_prompt_eof(api: httpx.Client) -> None:
    address = create_proxy(api, f"127.0.0.1:{unused_port()}")
    with connect(address) as client:  # accepted by the proxy, not refused
        outcome, elapsed = close_outcome(client)
    assert outcome == "eof"
    assert elapsed < 1.0


def test_a_client_half_close_reaches_the_upstream_which_can_still_reply(api: httpx.Client) -> None:
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        client.sendall(b"request")
        client.shutdown(socket.SHUT_WR)
        data, outcome = read_to_close(server)
        assert (data, outcome) == (b"request", "eof")
        server.sendall(b"reply after the client's EOF")
        assert recv_exact(client, 28) == b"reply after the client's EOF"
        server.sendall(b"and more")
        assert recv_exact(client, 8) == b"and more"
        server.shutdown(socket.SHUT_WR)  # both directions have ended: the connection closes
        outcome, elapsed = close_outcome(client)
        assert outcome == "eof"
        assert elapsed < 1.0


def test_an_upstream_half_close_reaches_the_client_which_can_still_send(api: httpx.Client) -> None:
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        server.sendall(b"banner")
        server.shutdown(socket.SHUT_WR)
        data, outcome = read_to_close(client)
        assert (data, outcome) == (b"banner", "eof")
        client.sendall(b"sent after the upstream's EOF")
        assert recv_exact(server, 29) == b"sent after the upstream's EOF"
        client.close()
        outcome, elapsed = close_outcome(server)
        assert outcome == "eof"
        assert elapsed < 1.0


def test_a_half_closed_connection_stays_open_while_the_other_side_is_quiet(api: httpx.Client) -> None:
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        client.shutdown(socket.SHUT_WR)
        assert read_to_close(server) == (b"", "eof")
        server.settimeout(0.3)
        client.settimeout(0.3)
        assert read_to_close(client) == (b"", "open")  # not torn down as Toxiproxy would
        server.sendall(b"late")
        client.settimeout(IO_TIMEOUT)
        assert recv_exact(client, 4) == b"late"


def test_an_upstream_reset_reaches_the_client_as_a_reset(api: httpx.Client) -> None:
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        exchange(client, server, b"before")
        abort(server)
        outcome, elapsed = close_outcome(client)
    assert outcome == "reset"
    assert elapsed < 1.0


def test_a_client_reset_reaches_the_upstream_as_a_reset(api: httpx.Client) -> None:
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        exchange(client, server, b"before")
        abort(client)
        outcome, elapsed = close_outcome(server)
    assert outcome == "reset"
    assert elapsed < 1.0


def test_a_full_close_by_the_upstream_closes_the_client_after_the_data(api: httpx.Client) -> None:
    payload = os.urandom(256 * 1024)
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        server.sendall(payload)
        server.close()
        data, outcome = read_to_close(client)
    assert outcome == "eof"
    assert data == payload


def test_new_connections_are_served_while_others_stay_open(
    api: httpx.Client, echo_server: EchoServer
) -> None:
    address = create_proxy(api, echo_server.address)
    with connect(address) as idle, selectors.DefaultSelector() as selector:
        for _ in range(10):
            with connect(address) as client:
                assert round_trip(client) < 1.0
        selector.register(idle, selectors.EVENT_READ)
        assert selector.select(0.05) == []  # the idle one got neither data nor a close
        assert round_trip(idle) < 1.0
