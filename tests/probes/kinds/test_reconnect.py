"""The reconnect probe against the sandbox's chat endpoint, through the websocket proxy, healthy and under faults."""

from __future__ import annotations

import time

import pytest
from websockets.exceptions import InvalidStatus

from chaos_service.errors import InvalidInput
from chaos_service.probes.kinds.reconnect import ReconnectProbe, UnexpectedClose
from chaos_service.probes.records import Outcome
from chaos_service.sandbox.environment import Environment
from tests.probes.kinds.support import SLACK, Faults, attempt, scheduled


def test_a_healthy_attempt_times_the_handshake_and_the_pong(env: Environment) -> None:
    observation = attempt(ReconnectProbe.from_environment(env))
    assert observation.valid, observation.reason
    d = observation.details
    assert 0 < d["handshake_s"] < d["pong_s"] <= d["closed_s"] < 5
    assert 0 < d["rtt_s"] <= d["pong_s"] - d["handshake_s"]
    assert d["skipped"] == 0


def test_open_loop_attempts_each_connect_anew(env: Environment, faults: Faults) -> None:
    before = faults.api.get("/proxies/chat_ws/stats").json()["connections"]["total"]
    results = scheduled(ReconnectProbe.from_environment(env, user="probe-a"), attempts=3)
    assert [r.outcome for r in results] == [Outcome.OK] * 3
    assert faults.api.get("/proxies/chat_ws/stats").json()["connections"]["total"] - before == 3


def test_a_refused_token_is_an_error_with_the_close_code(env: Environment) -> None:
    forged = ReconnectProbe(env.endpoints["chat_ws"], "another-secret-that-is-long-enough-for-hs256")
    with pytest.raises(UnexpectedClose) as closed:
        attempt(forged)
    assert (closed.value.code, closed.value.reason) == (4401, "invalid token signature")
    (result,) = scheduled(forged, attempts=1)
    assert result.outcome is Outcome.ERROR
    assert result.error == "UnexpectedClose: the server closed the connection with 4401 (invalid token signature)"


def test_a_close_before_the_pong_is_an_error_with_the_close_code(env: Environment, faults: Faults) -> None:
    with faults.toxic("chat_ws", "ws_close", code=4000, reason="chaos", field="type", value="pong"):
        (result,) = scheduled(ReconnectProbe.from_environment(env), attempts=1)
    assert result.outcome is Outcome.ERROR
    assert result.error == "UnexpectedClose: the server closed the connection with 4000 (chaos)"


def test_a_refused_handshake_is_an_error_and_recovery_is_seen(env: Environment, faults: Faults) -> None:
    probe = ReconnectProbe.from_environment(env)
    with faults.toxic("chat_ws", "ws_refuse", status=503):
        down = scheduled(probe, attempts=2)
        with pytest.raises(InvalidStatus, match="HTTP 503"):
            attempt(probe)
    assert [r.outcome for r in down] == [Outcome.ERROR] * 2
    assert all("HTTP 503" in (r.error or "") for r in down)
    assert [r.outcome for r in scheduled(probe, attempts=2)] == [Outcome.OK] * 2


def test_a_disabled_proxy_is_an_error(env: Environment, faults: Faults) -> None:
    with faults.disabled("chat_ws"):
        (result,) = scheduled(ReconnectProbe.from_environment(env), attempts=1)
    assert result.outcome is Outcome.ERROR
    assert result.error is not None and result.error.startswith("ConnectionRefusedError")


def test_a_held_pong_times_out_at_the_deadline(env: Environment, faults: Faults) -> None:
    began = time.monotonic()
    with faults.toxic("chat_ws", "ws_delay", delay=10_000, field="type", value="pong"):
        (result,) = scheduled(ReconnectProbe.from_environment(env), attempts=1, deadline=0.3)
    assert result.outcome is Outcome.TIMEOUT
    assert result.finished == result.scheduled + 0.3
    assert time.monotonic() - began < 3


def test_a_missing_pong_is_an_error_at_the_probes_own_timeout(env: Environment, faults: Faults) -> None:
    probe = ReconnectProbe.from_environment(env, pong_timeout=0.2, close_timeout=5)
    with faults.toxic("chat_ws", "ws_delay", delay=10_000, field="type", value="pong"):
        (result,) = scheduled(probe, attempts=1, deadline=5)
    assert result.outcome is Outcome.ERROR
    assert result.error == "TimeoutError: no pong within 0.2 s (0 other message(s))"
    assert 0.2 <= result.finished - result.started < 1  # ended by the probe's own timeout, promptly


def test_a_slow_pong_fails_the_threshold(env: Environment, faults: Faults) -> None:
    with faults.toxic("chat_ws", "ws_delay", delay=150, field="type", value="pong"):
        observation = attempt(ReconnectProbe.from_environment(env, max_latency=0.1))
    assert not observation.valid
    assert observation.reason is not None and "over the 100.0 ms threshold" in observation.reason
    assert observation.details["rtt_s"] >= 0.15 - SLACK


def test_a_pong_within_the_threshold_passes_it(env: Environment, faults: Faults) -> None:
    probe = ReconnectProbe.from_environment(env, max_latency=0.3)
    healthy = attempt(probe)
    assert healthy.valid, healthy.reason
    with faults.toxic("chat_ws", "ws_delay", delay=400, field="type", value="pong"):
        slow = attempt(probe)
    assert not slow.valid and slow.reason is not None and slow.reason.startswith("latency ")


def test_options_are_checked() -> None:
    with pytest.raises(InvalidInput, match="pong_timeout"):
        ReconnectProbe("ws://127.0.0.1:1/ws", "secret", pong_timeout=0)
    with pytest.raises(InvalidInput, match="max_latency"):
        ReconnectProbe("ws://127.0.0.1:1/ws", "secret", max_latency=0)
