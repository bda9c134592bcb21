"""Experiment files naming containers: ``process: NAME`` for a container, ``restart`` and ``stop``, attributes."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

from chaos_service.experiments.loader import InvalidExperiment, parse_experiment
from chaos_service.experiments.plan import ExperimentPlan, FaultPlan
from chaos_service.sandbox.environment import Container, Environment
from tests.experiments.support import sandbox_environment

ENV = dataclasses.replace(
    sandbox_environment(),
    docker="unix:///var/run/docker.sock",
    containers={"cache": Container(name="chaos-redis-1"), "workers": Container(label="app=worker")},
)
HEAD = """\
title: t
probes:
  h: {type: http, url: "http://127.0.0.1:1/health"}
method:
"""


def load(entries: str, env: Environment | None = ENV) -> ExperimentPlan:
    return parse_experiment(HEAD + textwrap.dedent(entries), "x.yaml", env, variables={})


def problems(entry: str, env: Environment | None = ENV) -> list[str]:
    with pytest.raises(InvalidExperiment) as caught:
        load(f"  - {entry}\n", env)
    return str(caught.value).splitlines()


def test_process_names_a_local_process_or_a_container() -> None:
    plan = load(
        """\
        - {fault: pause, process: cache, duration: 2s}
        - {fault: kill, process: workers, duration: 1s, attributes: {signal: SIGTERM}}
        - {fault: restart, process: cache, duration: 5s, attributes: {timeout: 0}}
        - {fault: stop, process: workers, duration: 5s}
        - {fault: kill, process: redis, duration: 1s}
        """
    )
    assert plan.method == (
        FaultPlan("pause-cache", "pause", "cache", at=0.0, duration=2.0),
        FaultPlan("kill-workers", "kill", "workers", at=2.0, duration=1.0, attributes={"signal": "SIGTERM"}),
        FaultPlan("restart-cache", "restart", "cache", at=3.0, duration=5.0, attributes={"timeout": 0}),
        FaultPlan("stop-workers", "stop", "workers", at=8.0, duration=5.0),
        FaultPlan("kill-redis", "kill", "redis", at=13.0, duration=1.0),
    )


def test_restart_and_stop_work_on_containers_only() -> None:
    assert problems("{fault: restart, process: redis, duration: 1s}") == [
        'x.yaml:5: method[0].fault: restart works on containers only; "redis" is a local process'
    ]
    assert problems("{fault: stop, process: mysql, duration: 1s}") == [
        'x.yaml:5: method[0].process: the environment has no container "mysql"; containers: cache, workers'
    ]
    assert problems("{fault: stop, process: redis, duration: 1s}", sandbox_environment()) == [
        'x.yaml:5: method[0].fault: stop works on containers only; "redis" is a local process'
    ]
    assert problems("{fault: restart, proxy: redis, duration: 1s}") == [
        "x.yaml:5: method[0].proxy: restart is a container fault: name an environment container (process: NAME)"
    ]
    assert problems("{fault: stop, duration: 1s}") == [
        "x.yaml:5: method[0]: name the container to fault (process: NAME)"
    ]
    assert problems("{fault: restart, process: cache, duration: 1s, stream: upstream, toxicity: 0.5}") == [
        "x.yaml:5: method[0].stream: does not apply to restart",
        "x.yaml:5: method[0].toxicity: does not apply to restart",
    ]


def test_an_unknown_name_lists_the_processes_and_the_containers() -> None:
    assert problems("{fault: pause, process: mysql, duration: 1s}") == [
        'x.yaml:5: method[0].process: the environment has no process or container "mysql"; '
        "processes: redis, postgres, chat; containers: cache, workers"
    ]
    assert problems("{fault: pause, process: mysql, duration: 1s}", sandbox_environment()) == [
        'x.yaml:5: method[0].process: the environment has no process "mysql"; processes: redis, postgres, chat'
    ]
    assert load("  - {fault: restart, process: mysql, duration: 1s}\n", env=None).method[0].target == "mysql"


def test_container_fault_attributes_are_checked() -> None:
    assert problems("{fault: kill, process: cache, duration: 1s, attributes: {signal: SIGNOPE, timeout: 3}}") == [
        "x.yaml:5: method[0].attributes.signal: signal must be a signal name like SIGTERM or a number from 1 to 64, "
        "not 'SIGNOPE'",
        "x.yaml:5: method[0].attributes.timeout: unknown attribute 'timeout' for kill (valid: signal)",
    ]
    assert problems("{fault: stop, process: cache, duration: 1s, attributes: {timeout: 1.5}}") == [
        "x.yaml:5: method[0].attributes.timeout: timeout must be a whole number of seconds, 0 or more, not 1.5"
    ]
    assert problems("{fault: pause, process: cache, duration: 1s, attributes: {signal: HUP}}") == [
        "x.yaml:5: method[0].attributes: does not apply to pause"
    ]
    assert problems("{fault: kill, process: cache, duration: 1s, attributes: {signal: 0}}", env=None) == [
        "x.yaml:5: method[0].attributes.signal: signal must be a signal name like SIGTERM or a number from 1 to 64, "
        "not 0"
    ]


def test_attributes_apply_to_containers_only() -> None:
    assert problems("{fault: kill, process: redis, duration: 1s, attributes: {signal: SIGTERM}}") == [
        'x.yaml:5: method[0].attributes: attributes apply to containers only; "redis" is a local process'
    ]
    without = load("  - {fault: kill, process: redis, duration: 1s, attributes: {signal: SIGTERM}}\n", env=None)
    assert without.method[0].attributes == {"signal": "SIGTERM"}  # a container or not: the environment says
