"""Flow control through a websocket proxy: slow readers slow senders; nothing is buffered
without bound, nothing is lost.

Each test sends far more than the proxy may hold (and than kernel buffers absorb) to a
client that does not read, waits for the upstream's sends to block, checks how much the
proxy had read by then, and finally reads everything in order.
"""

from __future__ import annotations

import httpx
from websockets.sync.client import ClientConnection

from tests.ws_faults.ws_support import TIMEOUT, WsUpstream, add_toxic, create_ws_proxy, slow_client, stats

MIB = 1024 * 1024
COUNT = 96
PAYLOAD = b"x" * MIB


def numbered(count: int) -> list[bytes]:
    return [seq.to_bytes(4, "big") + PAYLOAD for seq in range(count)]


def read_all_in_order(client: ClientConnection, count: int) -> None:
    for seq in range(count):
        message = client.recv(timeout=TIMEOUT)
        assert message[:4] == seq.to_bytes(4, "big")
        assert len(message) == MIB + 4


def test_a_client_that_does_not_read_blocks_the_upstreams_sends(api: httpx.Client) -> None:
    with WsUpstream(echo=False) as upstream:
        listen = create_ws_proxy(api, upstream.address)
        with slow_client(listen) as client:
            peer = upstream.peer(0)
            sending = peer.start_sending(numbered(COUNT))
            peer.wait_blocked()
            # proxy-side buffers stay small: the kernel's, one message queued in the client
            assert stats(api)["downstream"]["bytes"] < 24 * MIB
            read_all_in_order(client, COUNT)
            sending.result(TIMEOUT)


def test_messages_held_by_a_toxic_are_bounded_and_released_on_removal(api: httpx.Client) -> None:
    with WsUpstream(echo=False) as upstream:
        listen = create_ws_proxy(api, upstream.address)
        add_toxic(api, "ws_delay", {"delay": 60_000}, name="hold")
        with slow_client(listen) as client:
            peer = upstream.peer(0)
            sending = peer.start_sending(numbered(COUNT))
            peer.wait_blocked()
            read = stats(api)["downstream"]["bytes"]
            assert read <= 18 * MIB, read  # MAX_HELD_BYTES (16 MiB) and what one socket read adds
            assert api.delete("/proxies/chat_ws/toxics/hold").status_code == 204
            read_all_in_order(client, COUNT)
            sending.result(TIMEOUT)
