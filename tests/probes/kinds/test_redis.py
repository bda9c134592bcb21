"""The Redis probe against the sandbox's Redis, through its proxy, healthy and under faults."""

from __future__ import annotations

import time

import pytest

from chaos_service.errors import InvalidInput
from chaos_service.probes.kinds.redis import RedisProbe
from chaos_service.probes.records import Outcome
from chaos_service.sandbox.environment import Environment
from tests.probes.kinds.support import SLACK, Faults, attempt, scheduled


def test_a_healthy_attempt_records_each_step(env: Environment) -> None:
    observation = attempt(RedisProbe.from_environment(env))
    assert observation.valid, observation.reason
    details = observation.details
    assert 0 < details["connect_s"] <= details["ping_s"] <= details["set_s"] <= details["get_s"] < 5
    assert details["key"].startswith("chaos:probe:")


def test_open_loop_attempts_use_unique_keys(env: Environment) -> None:
    results = scheduled(RedisProbe.from_environment(env, key_prefix="probe-test:"), attempts=3)
    assert [r.outcome for r in results] == [Outcome.OK] * 3
    keys = [r.details["key"] for r in results]
    assert len(set(keys)) == 3
    assert all(key.startswith("probe-test:") for key in keys)


def test_a_disabled_proxy_is_an_error_and_recovery_is_seen(env: Environment, faults: Faults) -> None:
    probe = RedisProbe.from_environment(env)
    with faults.disabled("redis"):
        down = scheduled(probe, attempts=2)
    assert [r.outcome for r in down] == [Outcome.ERROR] * 2
    assert all((r.error or "").startswith("ConnectionError") for r in down), [r.error for r in down]
    assert [r.outcome for r in scheduled(probe, attempts=2)] == [Outcome.OK] * 2


def test_a_reset_connection_is_an_error_not_retried(env: Environment, faults: Faults) -> None:
    # A proxy of its own: the shared one also carries the chat back-end's Redis traffic.
    body = {"name": "probe_redis", "listen": "127.0.0.1:0", "upstream": env.proxies["redis"].upstream}
    listen = faults.api.post("/proxies", json=body).raise_for_status().json()["listen"]
    try:
        with faults.toxic("probe_redis", "reset_peer", stream="upstream", timeout=0) as name:
            (result,) = scheduled(RedisProbe(f"redis://{listen}/0"), attempts=1)
            assert faults.fired("probe_redis", name) == 1  # one connection: the failure was not retried
    finally:
        faults.api.delete("/proxies/probe_redis")
    assert result.outcome is Outcome.ERROR


def test_latency_slows_every_step_and_fails_the_threshold(env: Environment, faults: Faults) -> None:
    probe = RedisProbe.from_environment(env, max_latency=0.2)
    with faults.toxic("redis", "latency", latency=100):
        observation = attempt(probe)
    assert not observation.valid
    assert observation.reason is not None and "over the 200.0 ms threshold" in observation.reason
    details = observation.details
    assert details["ping_s"] - details["connect_s"] >= 0.1 - SLACK
    assert details["get_s"] - details["set_s"] >= 0.1 - SLACK
    assert attempt(probe).valid


def test_a_black_hole_times_out_at_the_deadline(env: Environment, faults: Faults) -> None:
    probe = RedisProbe.from_environment(env, timeout=10)
    began = time.monotonic()
    with faults.toxic("redis", "timeout", timeout=0):
        results = scheduled(probe, attempts=2, period=0.1, deadline=0.3)
    assert [r.outcome for r in results] == [Outcome.TIMEOUT] * 2
    assert [r.finished - r.scheduled for r in results] == [pytest.approx(0.3)] * 2
    assert time.monotonic() - began < 3


def test_the_probes_own_timeout_is_an_error_when_it_comes_first(env: Environment, faults: Faults) -> None:
    probe = RedisProbe.from_environment(env, timeout=0.2)
    with faults.toxic("redis", "timeout", timeout=0):
        (result,) = scheduled(probe, attempts=1, deadline=5)
    assert result.outcome is Outcome.ERROR
    assert result.finished - result.started < 2


def test_options_are_checked() -> None:
    with pytest.raises(InvalidInput, match="max_latency"):
        RedisProbe("redis://127.0.0.1:1/0", max_latency=-1)
