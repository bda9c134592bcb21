"""Probe objects from an experiment's probe plans, each with its open-loop schedule.

A ``websocket_chat`` probe becomes ``users`` virtual users, phase-shifted by
``every / users`` so that together they sample every ``every / users`` seconds.

Every option the schema accepts (`chaos_service.experiments.schema`) reaches the probe,
under the probe's own name where it differs (``expect_status`` → ``expected_status``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from chaos_service.experiments.plan import ProbePlan
from chaos_service.probes.kinds.chat import ChatVirtualUser, run_spec
from chaos_service.probes.kinds.http import HttpProbe
from chaos_service.probes.kinds.llm import LlmStreamProbe
from chaos_service.probes.kinds.postgres import PostgresProbe
from chaos_service.probes.kinds.reconnect import ReconnectProbe
from chaos_service.probes.kinds.redis import RedisProbe
from chaos_service.probes.schedule import Probe, Schedule
from chaos_service.sandbox.chat.auth import issue_token
from chaos_service.sandbox.environment import Environment

TOKEN_TTL = 24 * 3600.0


@dataclass
class ScheduledProbe:
    """One probe object of a plan (a plan of N chat users gives N of them)."""

    plan: ProbePlan
    probe: Probe
    schedule: Schedule

    @property
    def probers(self) -> int:
        """How many phase-shifted probes share this plan: what the resolution is divided by."""
        return int(self.plan.options.get("users", 1)) if self.plan.type == "websocket_chat" else 1


def build_probes(plan: ProbePlan, environment: Environment | None) -> list[ScheduledProbe]:
    options = dict(plan.options)
    schedule = Schedule(period=plan.every, deadline=plan.deadline)
    if plan.type == "websocket_chat":
        return _chat_users(plan, environment, options)
    probe: Probe
    if plan.type == "http":
        probe = HttpProbe(plan.url, name=plan.name, **_http_options(options))
    elif plan.type == "postgres":
        probe = PostgresProbe(plan.url, name=plan.name, **_pick(options, "query", "expected", "max_latency"))
    elif plan.type == "redis":
        probe = RedisProbe(plan.url, name=plan.name, **_pick(options, "max_latency"))
    elif plan.type == "llm":
        probe = LlmStreamProbe(
            plan.url,
            name=plan.name,
            **_pick(options, "extra_body", "max_ttft", "max_latency", "retries", "backoff", "model", "prompt"),
        )
    elif plan.type == "reconnect":
        probe = ReconnectProbe(plan.url, _secret(environment), name=plan.name, **_pick(options, "user", "max_latency"))
    else:  # pragma: no cover - the loader accepts only the types above
        raise ValueError(f"unknown probe type {plan.type!r}")
    return [ScheduledProbe(plan, probe, schedule)]


def _chat_users(plan: ProbePlan, environment: Environment | None, options: dict[str, Any]) -> list[ScheduledProbe]:
    users = int(options.get("users", 1))
    secret = _secret(environment)
    run = secrets.token_hex(3)
    chat_options = _pick(options, "content")
    if "sequence" in options:  # compiled once, shared by the users
        chat_options["sequence"] = run_spec(options["sequence"])
    probes = []
    for number in range(users):
        user = f"{plan.name}-{run}-{number}"
        virtual_user = ChatVirtualUser(
            plan.url,
            user,
            issue_token(secret, user, TOKEN_TTL),
            name=plan.name,
            **chat_options,
        )
        schedule = Schedule(period=plan.every, deadline=plan.deadline, phase=number * plan.every / users)
        probes.append(ScheduledProbe(plan, virtual_user, schedule))
    return probes


def _secret(environment: Environment | None) -> str:
    if environment is None:
        raise ValueError("chat probes need the environment's auth secret: pass an environment file")
    return environment.auth.secret


def _pick(options: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: options[name] for name in names if name in options}


def _http_options(options: dict[str, Any]) -> dict[str, Any]:
    picked = _pick(options, "max_latency", "method", "headers")
    if "body" in options:
        picked["body"] = str(options["body"]).encode()
    if "expect_status" in options:
        picked["expected_status"] = options["expect_status"]
    json_check = options.get("json")
    if isinstance(json_check, dict):
        picked["json_field"] = json_check.get("field")
        picked["json_value"] = json_check.get("value")
    return picked
