"""``chaos-service validate`` and ``chaos-service list``: output, exit codes, environments."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chaos_service.cli.main import main
from tests.experiments.test_loader import sandbox_environment

GOOD = """\
title: Redis latency
tags: [redis, latency]
catches: redis_hard_dependency
probes:
  cache: {type: redis, every: 250ms}
method:
  - {fault: latency, proxy: redis, attributes: {latency: 100}, duration: 5s}
  - {fault: down, proxy: postgres, duration: 2s}
"""

BAD = """\
title: Broken
probes:
  cache: {type: redis, every: soon}
method:
  - {fault: latency, proxy: nowhere, duration: 5s}
"""

NO_ENV = (
    "chaos-service validate: no environment (--env FILE, or a sandbox running here): endpoints, proxies, processes "
    "and ${env.…} variables were not checked"
)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], list[str]]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err.splitlines()


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with no sandbox in it, holding ``experiments/good.yaml``."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "good.yaml").write_text(GOOD)
    return tmp_path


def write_environment(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sandbox_environment().write(path)
    return path


def test_validate_prints_ok_for_valid_files(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "validate", "experiments/good.yaml") == (
        0,
        ["ok  experiments/good.yaml  Redis latency"],
        [NO_ENV],
    )


def test_validate_prints_every_problem_and_exits_2(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (here / "experiments" / "bad.yaml").write_text(BAD)
    code, out, err = run(capsys, "validate", "experiments")
    assert code == 2
    assert out == ["ok  experiments/good.yaml  Redis latency"]
    assert err == [
        NO_ENV,
        'experiments/bad.yaml:3: probes.cache.every: must be a positive duration like 5s, 250ms or 1.5m, not "soon"',
        "chaos-service validate: 1 of 2 files are invalid",
    ]


def test_validate_checks_names_against_the_environment(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (here / "experiments" / "bad.yaml").write_text(BAD.replace("every: soon", "every: 1s"))
    env = write_environment(here / "env.json")
    code, out, err = run(capsys, "validate", "experiments", "--env", str(env))
    assert (code, out) == (2, ["ok  experiments/good.yaml  Redis latency"])
    assert err == [
        'experiments/bad.yaml:5: method[0].proxy: the environment has no proxy "nowhere"; '
        "proxies: postgres, redis, llm, chat_ws",
        "chaos-service validate: 1 of 2 files are invalid",
    ]


def test_a_sandbox_running_here_is_the_default_environment(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (here / "experiments" / "bad.yaml").write_text(BAD.replace("every: soon", "every: 1s"))
    write_environment(here / ".chaos" / "sandbox" / "environment.json")
    code, _, err = run(capsys, "validate", "experiments/bad.yaml")
    assert code == 2
    assert err[0] == (
        'experiments/bad.yaml:5: method[0].proxy: the environment has no proxy "nowhere"; '
        "proxies: postgres, redis, llm, chat_ws"
    )


def test_validate_refuses_bad_arguments(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "validate", "missing.yaml") == (
        2,
        [],
        ["chaos-service validate: missing.yaml: no such file or directory"],
    )
    assert run(capsys, "validate", "experiments", "--env", "nope.json") == (
        2,
        [],
        ["chaos-service validate: --env nope.json: no such file"],
    )
    (here / "broken.json").write_text("{}")
    code, out, err = run(capsys, "validate", "experiments", "--env", "broken.json")
    assert (code, out) == (2, [])
    assert err[0].startswith("chaos-service validate: broken.json: not a sandbox environment file")
    (here / "empty").mkdir()
    assert run(capsys, "validate", "empty") == (
        2,
        [],
        ["chaos-service validate: no experiment files (*.yaml, *.yml) in empty"],
    )


def test_list_shows_a_table_of_the_experiments(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (here / "experiments" / "another.yml").write_text(GOOD.replace("Redis latency", "Another").replace("catches", "#"))
    assert run(capsys, "list") == (
        0,
        [
            "FILE                     TITLE          TAGS           FAULTS                          CATCHES",
            "experiments/another.yml  Another        redis,latency  latency(redis), down(postgres)  -",
            "experiments/good.yaml    Redis latency  redis,latency  latency(redis), down(postgres)  "
            "redis_hard_dependency",
        ],
        [],
    )


def test_list_names_the_invalid_files(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (here / "experiments" / "bad.yaml").write_text(BAD)
    code, out, err = run(capsys, "list", "experiments", "--env", str(write_environment(here / "env.json")))
    assert (code, len(out)) == (2, 2)
    assert err == [
        "chaos-service list: experiments/bad.yaml is invalid (2 problems): run `chaos-service validate "
        "experiments/bad.yaml`"
    ]


def test_list_of_an_empty_or_missing_directory(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (here / "empty").mkdir()
    assert run(capsys, "list", "empty") == (0, [], ["chaos-service list: no experiment files (*.yaml, *.yml) in empty"])
    assert run(capsys, "list", "nope") == (2, [], ["chaos-service list: nope: no such file or directory"])


def test_the_command_never_shows_a_traceback(here: Path) -> None:
    (here / "experiments" / "bad.yaml").write_text("title: [\n")
    result = subprocess.run(
        [sys.executable, "-m", "chaos_service", "validate", "experiments"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "experiments/bad.yaml:2: not valid YAML: while parsing a flow node" in result.stderr
    assert result.stdout == "ok  experiments/good.yaml  Redis latency\n"
