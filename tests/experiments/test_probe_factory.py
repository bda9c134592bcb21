"""Probe objects from probe plans: every option the schema accepts reaches the probe it builds."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chaos_service.experiments.loader import parse_experiment
from chaos_service.experiments.plan import ProbePlan
from chaos_service.experiments.probe_factory import build_probes
from chaos_service.experiments.schema import PROBE_MODELS, ProbeModel, fields_of
from chaos_service.probes.checkers.sequence import DEFAULT_RUN_SPEC, check_run
from chaos_service.probes.kinds.chat import ChatVirtualUser
from chaos_service.probes.kinds.http import HttpProbe
from chaos_service.probes.kinds.llm import LlmStreamProbe
from chaos_service.probes.kinds.reconnect import ReconnectProbe
from chaos_service.probes.schedule import Probe
from tests.experiments.support import sandbox_environment

ENV = sandbox_environment("a-secret-that-is-long-enough-for-hs256")
ENDPOINTS = {"http": "health"}  # the other types have a default endpoint
NO_TOOLS = "agent_started agent_thinking* (agent_completed | agent_error)"
TOOL_RUN = ["agent_started", "tool_executing", "tool_completed", "agent_thinking", "agent_completed"]

#: A value for every option of every type, each unlike the probe's default.
SAMPLES: dict[str, dict[str, Any]] = {
    "http": {
        "method": "post",
        "expect_status": [200, 204],
        "json": {"field": "status", "value": "ok"},
        "max_latency": "250ms",
        "headers": {"x-probe": "chaos"},
        "body": '{"ping": true}',
    },
    "postgres": {"query": "SELECT 2", "expected": 2, "max_latency": "1.5s"},
    "redis": {"max_latency": "100ms"},
    "llm": {
        "model": "gpt-other",
        "prompt": "Hello",
        "extra_body": {"stub": {"tokens": 5}},
        "retries": 2,
        "backoff": "250ms",
        "max_ttft": "2s",
        "max_latency": "3s",
    },
    "reconnect": {"user": "someone@example", "max_latency": "300ms"},
    "websocket_chat": {"users": 2, "content": "[[stub tokens=2]]", "sequence": NO_TOOLS},
}


def plan_of(kind: str, options: dict[str, Any]) -> ProbePlan:
    """The plan the loader makes of one probe of ``kind`` with ``options`` (as a file writes them)."""
    probe = {"type": kind, **({"endpoint": ENDPOINTS[kind]} if kind in ENDPOINTS else {}), **options}
    text = f"""\
title: t
probes:
  p: {json.dumps(probe)}
method:
  - {{fault: latency, proxy: redis, duration: 1s}}
"""
    (plan,) = parse_experiment(text, "x.yaml", ENV, variables={}).probes
    return plan


def built(kind: str, **options: Any) -> list[Probe]:
    return [scheduled.probe for scheduled in build_probes(plan_of(kind, options), ENV)]


def one(kind: str, **options: Any) -> Any:
    (probe,) = built(kind, **options)
    return probe


def state(probe: Probe) -> dict[str, Any]:
    """What a probe was built with: its public attributes, less those unique to each chat user."""
    unique = {"url", "user"} if isinstance(probe, ChatVirtualUser) else set()
    return {key: value for key, value in vars(probe).items() if not key.startswith("_") and key not in unique}


def test_the_samples_cover_every_option_the_schema_accepts() -> None:
    common = set(fields_of(ProbeModel))
    accepted = {kind: set(fields_of(model)) - common for kind, model in PROBE_MODELS.items()}
    assert accepted == {kind: set(options) for kind, options in SAMPLES.items()}


@pytest.mark.parametrize(
    ("kind", "option"), [(kind, option) for kind, options in SAMPLES.items() for option in options]
)
def test_every_accepted_option_changes_the_probe(kind: str, option: str) -> None:
    without = [state(probe) for probe in built(kind)]
    given = [state(probe) for probe in built(kind, **{option: SAMPLES[kind][option]})]
    assert given != without


def test_http_headers_and_body_reach_the_probe() -> None:
    probe = one("http", **SAMPLES["http"])
    assert isinstance(probe, HttpProbe)
    assert probe.headers == {"x-probe": "chaos"}
    assert probe.body == b'{"ping": true}'
    assert (probe.method, probe.expected_status, probe.max_latency) == ("POST", {200, 204}, 0.25)
    assert (probe.json_field, probe.json_value) == ("status", "ok")


def test_an_http_body_is_sent_as_utf8() -> None:
    assert one("http", body="café").body == "café".encode()


def test_llm_backoff_and_max_latency_reach_the_probe_in_seconds() -> None:
    probe = one("llm", **SAMPLES["llm"])
    assert isinstance(probe, LlmStreamProbe)
    assert (probe.retries, probe.backoff, probe.max_ttft, probe.max_latency) == (2, 0.25, 2.0, 3.0)
    assert (probe.body["model"], probe.body["messages"], probe.body["stub"]) == (
        "gpt-other",
        [{"role": "user", "content": "Hello"}],
        {"tokens": 5},
    )


def test_llm_backoff_may_be_zero() -> None:
    assert one("llm", retries=1, backoff=0).backoff == 0.0


def test_reconnect_max_latency_reaches_the_probe() -> None:
    probe = one("reconnect", **SAMPLES["reconnect"])
    assert isinstance(probe, ReconnectProbe)
    assert (probe.user, probe.max_latency) == ("someone@example", 0.3)


def test_every_chat_user_checks_its_runs_against_the_sequence() -> None:
    users = built("websocket_chat", **SAMPLES["websocket_chat"])
    assert len(users) == 2
    for user in users:
        assert isinstance(user, ChatVirtualUser)
        assert user.content == "[[stub tokens=2]]"
        assert user.spec.pattern == NO_TOOLS
        assert user.spec.pairs == DEFAULT_RUN_SPEC.pairs
        verdict = check_run(TOOL_RUN, user.spec)
        assert not verdict.valid and verdict.message.startswith("event 1: got tool_executing")


def test_without_a_sequence_chat_users_keep_the_sandbox_grammar() -> None:
    user = one("websocket_chat")
    assert isinstance(user, ChatVirtualUser)
    assert user.spec is DEFAULT_RUN_SPEC
    assert check_run(TOOL_RUN, user.spec).valid
