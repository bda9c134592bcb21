"""Proxies created on the session's engine for each test (the ``api`` fixture deletes them)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from chaos_service.sandbox.environment import Proxy

ProxyFactory = Callable[..., Proxy]


@pytest.fixture
def make_proxy(api: httpx.Client) -> ProxyFactory:
    """``make_proxy(name, upstream, protocol="tcp")``: a new proxy on the session engine."""

    def create(name: str, upstream: str, protocol: str = "tcp") -> Proxy:
        response = api.post("/proxies", json={"name": name, "upstream": upstream, "protocol": protocol})
        assert response.status_code == 201, response.text
        return Proxy(protocol=protocol, listen=response.json()["listen"], upstream=upstream)

    return create
