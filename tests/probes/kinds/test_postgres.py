"""The Postgres probe against the sandbox's Postgres, through its proxy, healthy and under faults."""

from __future__ import annotations

import time

import asyncpg
import pytest

from chaos_service.errors import InvalidInput
from chaos_service.probes.kinds.base import UNCHECKED
from chaos_service.probes.kinds.postgres import PostgresProbe
from chaos_service.probes.records import Outcome
from chaos_service.sandbox.environment import Environment
from tests.probes.kinds.support import SLACK, Faults, attempt, scheduled


def test_a_healthy_attempt_records_connect_and_query_times(env: Environment) -> None:
    probe = PostgresProbe.from_environment(env)
    assert (probe.name, probe.expected) == ("postgres", 1)
    observation = attempt(probe)
    assert observation.valid, observation.reason
    details = observation.details
    assert details["value"] == 1
    assert 0 < details["connect_s"] <= details["query_s"] < 5
    assert details["query_time_s"] == pytest.approx(details["query_s"] - details["connect_s"])


def test_open_loop_attempts_each_open_their_own_connection(env: Environment) -> None:
    probe = PostgresProbe(env.endpoints["postgres"], query="SELECT pg_backend_pid()")
    assert probe.expected is UNCHECKED
    results = scheduled(probe, attempts=3)
    assert [r.outcome for r in results] == [Outcome.OK] * 3
    assert len({r.details["value"] for r in results}) == 3  # three server processes: three connections


def test_a_different_value_is_invalid(env: Environment) -> None:
    observation = attempt(PostgresProbe(env.endpoints["postgres"], query="SELECT 6 * 7", expected=41))
    assert not observation.valid
    assert observation.reason == "query returned 42, expected 41"
    assert observation.details["value"] == 42


def test_a_failing_query_is_an_error(env: Environment) -> None:
    with pytest.raises(asyncpg.UndefinedTableError):
        attempt(PostgresProbe(env.endpoints["postgres"], query="SELECT * FROM no_such_table"))


def test_a_disabled_proxy_is_an_error_and_recovery_is_seen(env: Environment, faults: Faults) -> None:
    probe = PostgresProbe.from_environment(env)
    with faults.disabled("postgres"):
        down = scheduled(probe, attempts=2)
    assert [r.outcome for r in down] == [Outcome.ERROR] * 2
    assert all((r.error or "").startswith("ConnectionRefusedError") for r in down)
    assert [r.outcome for r in scheduled(probe, attempts=2)] == [Outcome.OK] * 2


def test_latency_slows_the_query_and_fails_the_threshold(env: Environment, faults: Faults) -> None:
    probe = PostgresProbe.from_environment(env, max_latency=0.1)
    with faults.toxic("postgres", "latency", latency=150):
        observation = attempt(probe)
    assert not observation.valid
    assert observation.reason is not None and "over the 100.0 ms threshold" in observation.reason
    assert observation.details["query_time_s"] >= 0.15 - SLACK
    assert attempt(probe).valid


def test_a_black_hole_times_out_at_the_deadline(env: Environment, faults: Faults) -> None:
    probe = PostgresProbe.from_environment(env, connect_timeout=10)
    began = time.monotonic()
    with faults.toxic("postgres", "timeout", timeout=0):
        (result,) = scheduled(probe, attempts=1, deadline=0.3)
    assert result.outcome is Outcome.TIMEOUT
    assert result.finished == result.scheduled + 0.3
    assert time.monotonic() - began < 3


def test_options_are_checked() -> None:
    with pytest.raises(InvalidInput, match="connect_timeout"):
        PostgresProbe("postgresql://127.0.0.1:1/x", connect_timeout=0)
