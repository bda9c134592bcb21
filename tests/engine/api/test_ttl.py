"""Toxics with a ``ttl``: reported ``ttl``/``expires_in``, expiry, re-arming, validation."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.engine.api.helpers import (
    TOXIC_KEYS,
    add_toxic,
    assert_empty,
    assert_json,
    connect,
    create_proxy,
    echo,
    error_message,
    port_of,
    toxics_of,
)
from tests.support.engine import EchoServer

TTL = 0.3
#: The toxic must not vanish before this many seconds (a little under TTL, for clock slack).
EARLIEST = 0.25
#: ...and must be gone by then.
DEADLINE = 5.0


@pytest.fixture
def proxy(api: httpx.Client, echo_server: EchoServer) -> str:
    create_proxy(api, "p", echo_server.address)
    return "p"


def _wait_until_gone(api: httpx.Client, url: str, since: float) -> float:
    """Poll ``url`` until it is 404; returns the seconds elapsed since ``since``."""
    while time.monotonic() - since < DEADLINE:
        response = api.get(url)
        if response.status_code == 404:
            return time.monotonic() - since
        assert response.status_code == 200, response.text
    pytest.fail(f"{url} still exists {DEADLINE}s after its ttl was armed")


def _assert_stays(api: httpx.Client, url: str, seconds: float) -> None:
    """``url`` keeps answering 200 for ``seconds`` (polled)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        response = api.get(url)
        assert response.status_code == 200, response.text


def _assert_ttl_keys(toxic: dict[str, Any], ttl: float) -> None:
    assert list(toxic) == [*TOXIC_KEYS, "ttl", "expires_in"]
    assert toxic["ttl"] == pytest.approx(ttl)
    assert 0 <= toxic["expires_in"] <= ttl


def test_toxic_with_ttl_is_shown_and_removed_after_it(api: httpx.Client, proxy: str) -> None:
    started = time.monotonic()
    response = api.post(
        f"/proxies/{proxy}/toxics", json={"type": "latency", "name": "brief", "attributes": {"latency": 1}, "ttl": TTL}
    )
    toxic = assert_json(response, 200)
    _assert_ttl_keys(toxic, TTL)
    assert toxic["attributes"] == {"latency": 1, "jitter": 0}

    shown = api.get(f"/proxies/{proxy}/toxics/brief").json()
    _assert_ttl_keys(shown, TTL)
    assert shown["expires_in"] <= toxic["expires_in"]
    _assert_ttl_keys(toxics_of(api, proxy)[0], TTL)
    _assert_ttl_keys(api.get(f"/proxies/{proxy}").json()["toxics"][0], TTL)

    elapsed = _wait_until_gone(api, f"/proxies/{proxy}/toxics/brief", started)
    assert elapsed >= EARLIEST, f"expired after {elapsed:.3f}s, ttl was {TTL}s"
    assert toxics_of(api, proxy) == []
    assert api.get(f"/proxies/{proxy}").json()["toxics"] == []
    add_toxic(api, proxy, type="latency", name="brief")  # the name is free again


def test_expiry_does_not_break_open_connections(api: httpx.Client, echo_server: EchoServer) -> None:
    created = create_proxy(api, "live", echo_server.address)
    with connect(port_of(created["listen"])) as sock:
        echo(sock, b"before")
        started = time.monotonic()
        add_toxic(api, "live", type="latency", attributes={"latency": 1}, ttl=TTL)
        add_toxic(api, "live", type="noop", stream="upstream", ttl=TTL)
        echo(sock, b"during")
        _wait_until_gone(api, "/proxies/live/toxics/latency_downstream", started)
        _wait_until_gone(api, "/proxies/live/toxics/noop_upstream", started)
        echo(sock, b"after")


@pytest.mark.parametrize("body", [{}, {"ttl": None}])
def test_toxics_without_ttl_have_neither_key(api: httpx.Client, proxy: str, body: dict[str, Any]) -> None:
    toxic = add_toxic(api, proxy, type="latency", name="forever", **body)
    assert list(toxic) == TOXIC_KEYS
    assert list(api.get(f"/proxies/{proxy}/toxics/forever").json()) == TOXIC_KEYS
    assert list(toxics_of(api, proxy)[0]) == TOXIC_KEYS
    assert list(api.get(f"/proxies/{proxy}").json()["toxics"][0]) == TOXIC_KEYS
    updated = api.patch(f"/proxies/{proxy}/toxics/forever", json={"attributes": {"latency": 2}, "ttl": None})
    assert list(assert_json(updated, 200)) == TOXIC_KEYS


def test_patch_with_a_new_ttl_rearms_it(api: httpx.Client, proxy: str) -> None:
    toxic = add_toxic(api, proxy, type="noop", name="later", ttl=60)
    _assert_ttl_keys(toxic, 60)
    assert toxic["expires_in"] > 50
    started = time.monotonic()
    updated = assert_json(api.patch(f"/proxies/{proxy}/toxics/later", json={"ttl": TTL}), 200)
    _assert_ttl_keys(updated, TTL)
    elapsed = _wait_until_gone(api, f"/proxies/{proxy}/toxics/later", started)
    assert elapsed >= EARLIEST, f"expired after {elapsed:.3f}s"


def test_patch_with_a_longer_ttl_postpones_expiry(api: httpx.Client, proxy: str) -> None:
    add_toxic(api, proxy, type="noop", name="extended", ttl=TTL)
    updated = assert_json(api.patch(f"/proxies/{proxy}/toxics/extended", json={"ttl": 60}), 200)
    _assert_ttl_keys(updated, 60)
    assert updated["expires_in"] > 50
    _assert_stays(api, f"/proxies/{proxy}/toxics/extended", TTL + 0.3)


def test_patch_ttl_on_a_toxic_without_one_arms_it(api: httpx.Client, proxy: str) -> None:
    add_toxic(api, proxy, type="latency", name="armed", attributes={"latency": 4})
    started = time.monotonic()
    updated = assert_json(api.patch(f"/proxies/{proxy}/toxics/armed", json={"ttl": TTL}), 200)
    _assert_ttl_keys(updated, TTL)
    assert updated["attributes"] == {"latency": 4, "jitter": 0}
    elapsed = _wait_until_gone(api, f"/proxies/{proxy}/toxics/armed", started)
    assert elapsed >= EARLIEST


def test_patch_without_ttl_keeps_the_expiry(api: httpx.Client, proxy: str) -> None:
    toxic = add_toxic(api, proxy, type="latency", name="kept", ttl=60)
    updated = assert_json(
        api.patch(f"/proxies/{proxy}/toxics/kept", json={"attributes": {"latency": 9}, "toxicity": 0.5}), 200
    )
    _assert_ttl_keys(updated, 60)
    assert updated["expires_in"] <= toxic["expires_in"]
    assert updated["attributes"]["latency"] == 9
    assert updated["toxicity"] == 0.5


@pytest.mark.parametrize("how", ["delete", "reset", "delete proxy"])
def test_a_removed_ttl_toxic_does_not_expire_its_successor(
    api: httpx.Client, echo_server: EchoServer, how: str
) -> None:
    create_proxy(api, "p", echo_server.address)
    add_toxic(api, "p", type="noop", name="reused", ttl=TTL)
    if how == "delete":
        assert_empty(api.delete("/proxies/p/toxics/reused"))
    elif how == "reset":
        assert_empty(api.post("/reset"))
    else:
        assert_empty(api.delete("/proxies/p"))
        create_proxy(api, "p", echo_server.address)
    successor = add_toxic(api, "p", type="noop", name="reused")
    assert "ttl" not in successor
    _assert_stays(api, "/proxies/p/toxics/reused", TTL + 0.3)


@pytest.mark.parametrize("ttl", [0, -1, -0.001, 0.0, "1", True, [1]])
def test_invalid_ttl_on_create_is_400_and_adds_nothing(api: httpx.Client, proxy: str, ttl: object) -> None:
    response = api.post(f"/proxies/{proxy}/toxics", json={"type": "latency", "name": "t", "ttl": ttl})
    message = error_message(response, 400)
    assert "ttl" in message, message
    assert toxics_of(api, proxy) == []


@pytest.mark.parametrize("ttl", [0, -5, "10"])
def test_invalid_ttl_on_update_is_400_and_changes_nothing(api: httpx.Client, proxy: str, ttl: object) -> None:
    original = add_toxic(api, proxy, type="latency", name="t", attributes={"latency": 3})
    response = api.patch(f"/proxies/{proxy}/toxics/t", json={"ttl": ttl, "attributes": {"latency": 8}})
    message = error_message(response, 400)
    assert "ttl" in message, message
    assert toxics_of(api, proxy) == [original]
