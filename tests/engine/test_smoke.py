import socket

import httpx

from tests.support.engine import EchoServer


def test_a_proxy_forwards_bytes_both_ways(api: httpx.Client, echo_server: EchoServer) -> None:
    created = api.post("/proxies", json={"name": "echo", "upstream": echo_server.address, "listen": "127.0.0.1:0"})
    assert created.status_code == 201
    host, port = created.json()["listen"].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"hello")
        assert sock.recv(5) == b"hello"
