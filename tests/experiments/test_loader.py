"""Loading experiment files: YAML lines, variables, resolution against an environment, the timeline."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from chaos_service.errors import InvalidInput
from chaos_service.experiments.loader import InvalidExperiment, discover, load_experiment, parse_experiment
from chaos_service.experiments.plan import (
    Comparison,
    ExperimentPlan,
    FaultPlan,
    GuardrailPlan,
    ProbePlan,
    RollbackPlan,
    Settings,
    SteadyStatePlan,
)
from chaos_service.sandbox.environment import Environment
from tests.experiments.support import sandbox_environment

REPO = Path(__file__).resolve().parents[2]


ENV = sandbox_environment()

FULL = """\
title: Postgres partition during live chats
description: Everything at once.
tags: [postgres, partition]
catches: postgres_pool_never_reconnects
settings: {warmup: 5s, recovery_window: 30s, steady_window: 5s, k: 3, ttl_margin: 30s}
probes:
  chat:   {type: websocket_chat, endpoint: chat_ws, users: 5, every: 1s, deadline: 10s, content: "[[stub tool=lookup_order tokens=3]]"}
  health: {type: http, endpoint: health, every: 200ms, deadline: 2s, expect_status: 200, json: {field: status, value: ok}}
  db:     {type: postgres, endpoint: postgres, every: 250ms}
  cache:  {type: redis, endpoint: redis, every: 250ms}
  llm:    {type: llm, endpoint: llm, every: 1s, extra_body: {stub: {tokens: 5}}, max_ttft: 2s}
  ws:     {type: reconnect, endpoint: chat_ws, every: 1s}
steady_state:
  - {probe: chat, success_rate: ">= 0.99", p95_latency: "<= 10s"}
method:
  - {name: pg, at: 5s, fault: partition, proxy: postgres, duration: 10s}
  - {at: 8s, fault: latency, proxy: redis, attributes: {latency: 800, jitter: 50}, duration: 10s, stream: downstream, toxicity: 1}
  - {pause: 2s}
  - {after: pg, delay: 1s, fault: http_error, proxy: llm, attributes: {status: 503}, toxicity: 0.3, duration: 5s}
  - {fault: pause, process: redis, duration: 3s}
abort_when:
  - {probe: health, success_rate: "< 0.2", for: 15s}
slo: {recovery_time: "<= 30s", event_delivery: ">= 0.99", ordering_violations: "== 0", cross_user_leaks: "== 0"}
rollbacks:
  - {name: notify, method: POST, url: "${env.engine}/reset"}
"""  # noqa: E501

HEAD = """\
title: t
probes:
  h: {type: http, url: "http://127.0.0.1:1/health"}
method:
"""


def load(text: str, env: Environment | None = ENV, variables: dict[str, str] | None = None) -> ExperimentPlan:
    return parse_experiment(textwrap.dedent(text), "x.yaml", env, variables=variables or {})


def problems(text: str, env: Environment | None = ENV, variables: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(InvalidExperiment) as caught:
        load(text, env, variables)
    return str(caught.value).splitlines()


def faults(entries: str, env: Environment | None = ENV) -> list[tuple[str, str, float, float]]:
    return [(f.name, f.target, f.at, f.end) for f in load(HEAD + entries, env).method]


# -- the whole file ------------------------------------------------------------------------------


def test_a_full_example_resolves_to_its_plan(tmp_path: Path) -> None:
    path = tmp_path / "pg.yaml"
    path.write_text(FULL)
    plan = load_experiment(path, ENV, variables={})
    assert plan == ExperimentPlan(
        path=str(path),
        title="Postgres partition during live chats",
        description="Everything at once.",
        tags=("postgres", "partition"),
        catches="postgres_pool_never_reconnects",
        probes=(
            ProbePlan("chat", "websocket_chat", "chat_ws", "ws://127.0.0.1:28081/ws", 1.0, 10.0,
                      {"users": 5, "content": "[[stub tool=lookup_order tokens=3]]"}),
            ProbePlan("health", "http", "health", "http://127.0.0.1:8080/health", 0.2, 2.0,
                      {"expect_status": 200, "json": {"field": "status", "value": "ok"}}),
            ProbePlan("db", "postgres", "postgres", "postgresql://chaos@127.0.0.1:25432/chaos", 0.25, 1.0, {}),
            ProbePlan("cache", "redis", "redis", "redis://127.0.0.1:26379/0", 0.25, 1.0, {}),
            ProbePlan("llm", "llm", "llm", "http://127.0.0.1:28080/v1", 1.0, 10.0,
                      {"extra_body": {"stub": {"tokens": 5}}, "max_ttft": 2.0}),
            ProbePlan("ws", "reconnect", "chat_ws", "ws://127.0.0.1:28081/ws", 1.0, 4.0, {}),
        ),
        steady_state=(
            SteadyStatePlan("chat", (Comparison("success_rate", ">=", 0.99, "success_rate >= 0.99"),
                                     Comparison("p95_latency", "<=", 10.0, "p95_latency <= 10s"))),
        ),
        method=(
            FaultPlan("pg", "partition", "postgres", at=5.0, duration=10.0),
            FaultPlan("latency-redis", "latency", "redis", at=8.0, duration=10.0,
                      attributes={"latency": 800, "jitter": 50}),
            FaultPlan("http_error-llm", "http_error", "llm", at=16.0, duration=5.0, toxicity=0.3,
                      attributes={"status": 503}),
            FaultPlan("pause-redis", "pause", "redis", at=21.0, duration=3.0),  # after the pause, from the cursor
        ),
        abort_when=(GuardrailPlan("health", Comparison("success_rate", "<", 0.2, "success_rate < 0.2"), 15.0),),
        slo=(
            Comparison("recovery_time", "<=", 30.0, "recovery_time <= 30s"),
            Comparison("event_delivery", ">=", 0.99, "event_delivery >= 0.99"),
            Comparison("ordering_violations", "==", 0.0, "ordering_violations == 0"),
            Comparison("cross_user_leaks", "==", 0.0, "cross_user_leaks == 0"),
        ),
        rollbacks=(RollbackPlan("notify", "POST", "http://127.0.0.1:8474/reset"),),
        settings=Settings(5.0, 30.0, 5.0, 3, 30.0),
    )  # fmt: skip
    assert plan.method_end == 24.0


def test_without_an_environment_only_the_file_is_checked() -> None:
    plan = load(FULL.replace("proxy: llm", "proxy: nowhere"), env=None)
    assert [p.url for p in plan.probes] == [""] * 6
    assert [p.endpoint for p in plan.probes] == ["chat_ws", "health", "postgres", "redis", "llm", "chat_ws"]
    assert plan.rollbacks[0].url == "${env.engine}/reset"
    assert plan.method[2].target == "nowhere"


def test_the_shipped_experiments_are_valid_against_the_sandbox() -> None:
    files = discover([REPO / "experiments"])
    assert files
    catching = 0
    for file in files:
        plan = load_experiment(file, ENV, variables={})
        assert plan.title and plan.method and plan.description
        catching += plan.catches is not None
    assert catching >= 6  # every seeded defect has an experiment that catches it


def test_every_problem_names_the_file_and_a_line() -> None:
    text = FULL.replace("every: 250ms", "every: sometimes").replace("proxy: llm", "proxy: llama")
    text = text.replace("users: 5", "users: 0").replace("for: 15s", "for: ever").replace('"<= 30s"', '"soon"')
    lines = problems(text)
    assert len(lines) == 6
    assert all(re.match(r"^x\.yaml:\d+: [a-z_.\[\]0-9]+: ", line) for line in lines), lines


def test_invalid_experiment_is_invalid_input_with_its_problems_in_line_order() -> None:
    with pytest.raises(InvalidInput) as caught:
        load("title: t\nprobes: {h: {type: http}}\nmethod: [{fault: noop, duration: 1s}]\nfoo: 1\n")
    error = caught.value
    assert isinstance(error, InvalidExperiment) and error.file == "x.yaml"
    assert [(p.line, p.path) for p in error.problems] == [(2, "probes.h"), (3, "method[0]"), (4, "foo")]


def test_an_unreadable_file_is_reported_as_such(tmp_path: Path) -> None:
    with pytest.raises(InvalidExperiment) as caught:
        load_experiment(tmp_path / "missing.yaml")
    assert str(caught.value) == f"{tmp_path / 'missing.yaml'}: cannot read the file: No such file or directory"
    (tmp_path / "latin1.yaml").write_bytes(b"title: caf\xe9\n")
    with pytest.raises(InvalidExperiment, match=r"latin1\.yaml: cannot read the file: 'utf-8' codec"):
        load_experiment(tmp_path / "latin1.yaml")


# -- YAML and lines ------------------------------------------------------------------------------


def test_yaml_syntax_errors_name_their_line() -> None:
    assert problems("title: t\nprobes:\n  a: {type: http\n  b: 1\n") == [
        "x.yaml:4: not valid YAML: while parsing a flow mapping (line 3): expected ',' or '}', but got ':'"
    ]
    assert problems("title: a\n  bad: indent\n") == ["x.yaml:2: not valid YAML: mapping values are not allowed here"]
    assert problems("title: t\nx: \x07\n") == [
        "x.yaml:2: not valid YAML: unacceptable character #x0007: special characters are not allowed"
    ]


def test_a_file_is_one_mapping() -> None:
    assert problems("") == ["x.yaml:1: the file is empty: an experiment needs at least title, probes and method"]
    assert problems("# nothing\n") == problems("")
    assert problems("- a\n") == [
        "x.yaml:1: must be a mapping of fields (title, description, tags, catches, settings, probes, steady_state, "
        "method, abort_when, slo, rollbacks), not a list"
    ]
    assert problems("title: a\n---\ntitle: b\n") == [
        "x.yaml:2: not valid YAML: expected a single document in the stream (line 1): but found another document"
    ]


def test_duplicate_keys_are_errors() -> None:
    assert problems(HEAD + "  - {fault: noop, proxy: redis, duration: 1s}\ntitle: again\n") == [
        "x.yaml:6: title: duplicate key (first at line 1)"
    ]


def test_block_style_lines_point_at_the_value() -> None:
    text = HEAD + textwrap.dedent("""\
          - name: slow
            fault: latency
            proxy: redis
            duration: soon
            attributes:
              latency: lots
        """)
    assert problems(text) == [
        'x.yaml:8: method[0].duration: must be a positive duration like 5s, 250ms or 1.5m, not "soon"'
    ]


def test_anchors_aliases_and_merge_keys() -> None:
    anchored = 'h: &p {type: http, url: "http://127.0.0.1:1/health"}\n  h2: {<<: *p, every: 2s}'
    text = HEAD.replace('h: {type: http, url: "http://127.0.0.1:1/health"}', anchored)
    plan = load(text + "  - {fault: noop, proxy: redis, duration: 1s}\n")
    assert [(p.name, p.every, p.url) for p in plan.probes] == [
        ("h", 1.0, "http://127.0.0.1:1/health"),
        ("h2", 2.0, "http://127.0.0.1:1/health"),
    ]
    assert "x.yaml:1: a[0]: an alias that contains itself" in problems("a: &x [*x]\n")


def test_aliases_cannot_blow_a_file_up() -> None:
    text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for name, previous in zip("bcde", "abcd", strict=True):
        text += f"{name}: &{name} [{', '.join([f'*{previous}'] * 10)}]\n"
    assert problems(text) == ["x.yaml:1: the file expands to more than 100000 values"]


def test_keys_are_read_as_written_and_tags_are_refused() -> None:
    fields = "title, description, tags, catches, settings, probes, steady_state, method, abort_when, slo, rollbacks"
    assert f"x.yaml:1: on: unknown field; fields here: {fields}" in problems("on: 1\n")
    assert "x.yaml:1: keys must be plain text, not a list or a mapping" in problems("? [a]\n: b\n")
    assert "x.yaml:1: title: unsupported YAML tag !!python/object/apply:os.system" in problems(
        "title: !!python/object/apply:os.system [ls]\n"
    )
    assert "x.yaml:1: title: unsupported YAML tag !custom" in problems("title: !custom x\n")
    assert "x.yaml:1: title: unsupported YAML tag !!set" in problems("title: !!set {a}\n")


# -- variables -----------------------------------------------------------------------------------


def rollback_url(url: str, env: Environment | None = ENV, variables: dict[str, str] | None = None) -> str:
    text = HEAD + f"  - {{fault: noop, proxy: redis, duration: 1s}}\nrollbacks:\n  - {{url: '{url}'}}\n"
    return load(text, env, variables).rollbacks[0].url


def url_problems(url: str, env: Environment | None = ENV, variables: dict[str, str] | None = None) -> list[str]:
    text = HEAD + f"  - {{fault: noop, proxy: redis, duration: 1s}}\nrollbacks:\n  - {{url: '{url}'}}\n"
    return problems(text, env, variables)


def test_environment_variables() -> None:
    assert rollback_url("${env.engine}/reset") == "http://127.0.0.1:8474/reset"
    assert rollback_url("${env.endpoints.health}") == "http://127.0.0.1:8080/health"
    assert rollback_url("${env.direct.llm}/models") == "http://127.0.0.1:8081/v1/models"
    assert rollback_url("http://${env.proxies.redis.listen}/") == "http://127.0.0.1:26379/"
    assert rollback_url("http://${env.proxies.llm.upstream}/") == "http://127.0.0.1:8081/"


def test_process_variables_and_defaults() -> None:
    variables = {"HOST": "h.example", "EMPTY": ""}
    assert rollback_url("http://${HOST}/x", variables=variables) == "http://h.example/x"
    assert rollback_url("http://${NOPE:-d.example}/x", variables=variables) == "http://d.example/x"
    assert rollback_url("http://${EMPTY:-e.example}/x", variables=variables) == "http://e.example/x"
    assert rollback_url("http://h/$${literal}", variables=variables) == "http://h/${literal}"


def test_variables_apply_before_validation() -> None:
    text = HEAD.replace('url: "http://127.0.0.1:1/health"}', 'url: "${env.endpoints.health}", every: "${P:-2s}"}')
    plan = load(text + "  - {fault: noop, proxy: redis, duration: '${D}'}\n", variables={"D": "3s"})
    assert (plan.probes[0].url, plan.probes[0].every, plan.method[0].duration) == (ENV.endpoints["health"], 2.0, 3.0)


def test_unknown_variables_are_errors_naming_them() -> None:
    assert url_problems("http://${NOPE}/") == [
        "x.yaml:7: rollbacks[0].url: unknown variable ${NOPE}: it is not set (write ${NOPE:-default} for a default)"
    ]
    assert url_problems("${env.endpoints.nope}") == [
        'x.yaml:7: rollbacks[0].url: unknown variable ${env.endpoints.nope}: the environment has no endpoint "nope" '
        "(endpoints: chat_ws, health, postgres, redis, llm)"
    ]
    assert url_problems("${env.proxies.nope.listen}") == [
        'x.yaml:7: rollbacks[0].url: unknown variable ${env.proxies.nope.listen}: the environment has no proxy "nope" '
        "(proxies: postgres, redis, llm, chat_ws)"
    ]
    message = (
        "the environment gives ${env.engine}, ${env.endpoints.NAME}, ${env.direct.NAME} and "
        "${env.proxies.NAME.listen} (or .upstream)"
    )
    for env in (ENV, None):  # the form is checked without an environment too
        assert url_problems("${env.bogus}", env) == [
            f"x.yaml:7: rollbacks[0].url: unknown variable ${{env.bogus}}; {message}"
        ]
        assert url_problems("${env.proxies.redis.port}", env) == [
            f"x.yaml:7: rollbacks[0].url: unknown variable ${{env.proxies.redis.port}}; {message}"
        ]
    assert url_problems("${1x}") == [
        "x.yaml:7: rollbacks[0].url: bad variable ${1x}: write ${NAME}, ${NAME:-default} or "
        + message.split("gives ")[1]
    ]
    assert url_problems("http://${HOST") == [
        'x.yaml:7: rollbacks[0].url: unterminated variable "${HOST": close it with }'
    ]


# -- probes --------------------------------------------------------------------------------------


def probe(definition: str, env: Environment | None = ENV) -> ProbePlan:
    text = HEAD.replace('h: {type: http, url: "http://127.0.0.1:1/health"}', f"h: {definition}")
    return load(text + "  - {fault: noop, proxy: redis, duration: 1s}\n", env).probes[0]


def probe_problems(definition: str, env: Environment | None = ENV) -> list[str]:
    text = HEAD.replace('h: {type: http, url: "http://127.0.0.1:1/health"}', f"h: {definition}")
    return problems(text + "  - {fault: noop, proxy: redis, duration: 1s}\n", env)


def test_probes_use_their_endpoint_or_their_url() -> None:
    assert probe("{type: http, endpoint: health}").url == "http://127.0.0.1:8080/health"
    assert (probe("{type: http, url: 'https://x/h'}").endpoint, probe("{type: http, url: 'https://x/h'}").url) == (
        "",
        "https://x/h",
    )
    assert probe("{type: postgres, url: '${env.direct.postgres}'}").url == ENV.direct["postgres"]
    assert probe("{type: postgres, url: '${env.direct.postgres}'}", env=None).url == ""
    assert probe_problems("{type: http, endpoint: health, url: 'http://x'}") == [
        "x.yaml:3: probes.h: give endpoint or url, not both"
    ]
    assert probe_problems("{type: http}") == [
        "x.yaml:3: probes.h: give endpoint (the name of an environment endpoint) or url"
    ]
    assert probe_problems("{type: http, endpoint: nope}") == [
        'x.yaml:3: probes.h.endpoint: the environment has no endpoint "nope"; '
        "endpoints: chat_ws, health, postgres, redis, llm"
    ]


def test_probe_types_have_a_usual_endpoint() -> None:
    assert [(probe(f"{{type: {t}}}").endpoint, probe(f"{{type: {t}}}").url) for t in ("postgres", "reconnect")] == [
        ("postgres", ENV.endpoints["postgres"]),
        ("chat_ws", ENV.endpoints["chat_ws"]),
    ]
    env = sandbox_environment()
    del env.endpoints["redis"]
    assert probe_problems("{type: redis}", env) == [
        'x.yaml:3: probes.h: the environment has no endpoint "redis" (the default for redis probes; give endpoint or '
        "url); endpoints: chat_ws, health, postgres, llm"
    ]


@pytest.mark.parametrize(
    ("kind", "url", "scheme"),
    [("http", "ftp://x", "http"), ("llm", "x", "http"), ("postgres", "redis://x", "postgresql"),
     ("redis", "http://x", "redis"), ("reconnect", "http://x/ws", "ws"), ("websocket_chat", "ws://", "ws")],
)  # fmt: skip
def test_urls_must_have_the_probe_types_scheme(kind: str, url: str, scheme: str) -> None:
    assert probe_problems(f"{{type: {kind}, url: '{url}'}}") == [
        f'x.yaml:3: probes.h.url: must be a {scheme}:// URL, not "{url}"'
    ]


def test_default_deadlines() -> None:
    assert [probe(f"{{type: redis, every: {every}}}").deadline for every in ("100ms", "1s", "5s")] == [0.4, 4.0, 10.0]
    assert probe("{type: llm, every: 100ms}").deadline == 10.0
    assert probe("{type: websocket_chat, every: 100ms}").deadline == 10.0
    assert probe("{type: redis, every: 1s, deadline: 30s}").deadline == 30.0


def test_probe_names() -> None:
    text = HEAD.replace("  h: {", '  "a b": {') + "  - {fault: noop, proxy: redis, duration: 1s}\n"
    assert problems(text) == [
        'x.yaml:3: probes."a b": probe names are letters, digits and _ . - (up to 64 characters, starting with a '
        'letter or digit), not "a b"'
    ]


# -- steady state and guardrails -----------------------------------------------------------------


def test_checks_name_a_declared_probe() -> None:
    text = HEAD + "  - {fault: noop, proxy: redis, duration: 1s}\n"
    assert problems(text + 'steady_state:\n  - {probe: hh, success_rate: ">= 1", p95: 1}\n') == [
        "x.yaml:7: steady_state[0].p95: unknown field; fields here: probe, success_rate, p50_latency, p95_latency, "
        "p99_latency",
        'x.yaml:7: steady_state[0].probe: no probe is named "hh"; probes: h',
    ]
    assert problems(text + 'abort_when:\n  - {probe: hh, success_rate: "< 0.5"}\n') == [
        'x.yaml:7: abort_when[0].probe: no probe is named "hh"; probes: h'
    ]


def test_steady_state_needs_a_check_and_a_warmup() -> None:
    text = HEAD + "  - {fault: noop, proxy: redis, duration: 1s}\nsteady_state:\n  - {probe: h}\n"
    assert problems(text) == [
        "x.yaml:7: steady_state[0]: give at least one check: success_rate, p50_latency, p95_latency, p99_latency"
    ]
    text = text.replace("{probe: h}", '{probe: h, success_rate: ">= 0.9"}') + "settings: {warmup: 0s}\n"
    assert problems(text) == [
        "x.yaml:8: settings.warmup: must be more than 0 when steady_state is declared: it is read then"
    ]


def test_a_guardrail_has_exactly_one_check_and_a_default_window() -> None:
    text = HEAD + "  - {fault: noop, proxy: redis, duration: 1s}\nabort_when:\n"
    plan = load(text + '  - {probe: h, p95_latency: "> 2s"}\n')
    assert plan.abort_when == (GuardrailPlan("h", Comparison("p95_latency", ">", 2.0, "p95_latency > 2s"), 10.0),)
    assert problems(text + "  - {probe: h, for: 5s}\n") == [
        "x.yaml:7: abort_when[0]: give exactly one check (success_rate, p50_latency, p95_latency, p99_latency), not 0"
    ]
    assert problems(text + '  - {probe: h, success_rate: "< 0.5", p99_latency: "> 1s"}\n') == [
        "x.yaml:7: abort_when[0]: give exactly one check (success_rate, p50_latency, p95_latency, p99_latency), not 2"
    ]


# -- the timeline --------------------------------------------------------------------------------


def test_at_after_delay_and_the_cursor() -> None:
    entries = """\
  - {name: a, fault: noop, proxy: redis, duration: 4s}
  - {fault: noop, proxy: redis, duration: 1s, delay: 500ms}
  - {pause: 2s}
  - {name: c, at: 1s, fault: noop, proxy: postgres, duration: 2s}
  - {after: a, delay: 1s, fault: noop, proxy: postgres, duration: 1s}
  - {pause: 1s}
  - {fault: noop, proxy: postgres, duration: 1s}
  - {after: c, fault: noop, proxy: postgres, duration: 1s}
"""
    assert faults(entries) == [
        ("a", "redis", 0.0, 4.0),
        ("noop-redis", "redis", 4.5, 5.5),
        ("c", "postgres", 1.0, 3.0),  # at: the cursor moves to its end
        ("noop-postgres", "postgres", 5.0, 6.0),
        ("noop-postgres-2", "postgres", 7.0, 8.0),  # cursor 6 + pause 1
        ("noop-postgres-3", "postgres", 3.0, 4.0),
    ]


def test_default_names_avoid_given_ones() -> None:
    entries = """\
  - {fault: latency, proxy: redis, duration: 1s}
  - {name: latency-redis, fault: latency, proxy: redis, duration: 1s}
  - {fault: latency, proxy: redis, duration: 1s}
  - {after: latency-redis-2, fault: pause, process: chat, duration: 1s}
"""
    assert faults(entries) == [
        ("latency-redis-2", "redis", 0.0, 1.0),
        ("latency-redis", "redis", 1.0, 2.0),
        ("latency-redis-3", "redis", 2.0, 3.0),
        ("pause-chat", "chat", 1.0, 2.0),
    ]


def test_names_are_unique_and_after_names_an_earlier_fault() -> None:
    assert problems(
        HEAD + "  - {name: a, fault: noop, proxy: redis, duration: 1s}\n"
        "  - {name: a, fault: noop, proxy: redis, duration: 1s}\n"
    ) == ['x.yaml:6: method[1].name: "a" is already the name of method[0]']
    assert problems(
        HEAD + "  - {after: b, fault: noop, proxy: redis, duration: 1s}\n"
        "  - {name: b, fault: noop, proxy: redis, duration: 1s}\n"
    ) == ['x.yaml:5: method[0].after: "b" is not an earlier fault: after must name a fault listed before']
    assert problems(
        HEAD + "  - {name: a, fault: noop, proxy: redis, duration: 1s}\n"
        "  - {after: zz, fault: noop, proxy: redis, duration: 1s}\n"
    ) == ['x.yaml:6: method[1].after: no earlier fault is named "zz"; earlier faults: a']


def test_a_method_of_pauses_alone_is_refused() -> None:
    assert problems(HEAD + "  - {pause: 1s}\n") == [
        "x.yaml:4: method: list at least one fault (pauses only move the timeline)"
    ]


# -- faults and their targets --------------------------------------------------------------------


def fault_problems(entry: str, env: Environment | None = ENV) -> list[str]:
    return problems(HEAD + f"  - {entry}\n", env)


def test_proxy_faults_name_a_proxy_and_process_faults_a_process() -> None:
    assert fault_problems("{fault: pause, proxy: redis, duration: 1s}") == [
        "x.yaml:5: method[0].proxy: pause is a process fault: name an environment process (process: NAME)"
    ]
    assert fault_problems("{fault: latency, process: redis, duration: 1s}") == [
        "x.yaml:5: method[0].process: latency is a proxy fault: name a proxy (proxy: NAME)"
    ]
    assert fault_problems("{fault: latency, proxy: redis, process: redis, duration: 1s}") == [
        "x.yaml:5: method[0]: give proxy or process, not both"
    ]
    assert fault_problems("{fault: kill, duration: 1s}") == [
        "x.yaml:5: method[0]: name the process to fault (process: NAME)"
    ]
    assert fault_problems("{fault: down, duration: 1s}") == [
        "x.yaml:5: method[0]: name the proxy to fault (proxy: NAME)"
    ]


def test_targets_must_exist_in_the_environment() -> None:
    assert fault_problems("{fault: latency, proxy: mysql, duration: 1s}") == [
        'x.yaml:5: method[0].proxy: the environment has no proxy "mysql"; proxies: postgres, redis, llm, chat_ws'
    ]
    assert fault_problems("{fault: kill, process: mysql, duration: 1s}") == [
        'x.yaml:5: method[0].process: the environment has no process "mysql"; processes: redis, postgres, chat'
    ]
    assert load(HEAD + "  - {fault: kill, process: mysql, duration: 1s}\n", env=None).method[0].target == "mysql"


def test_faults_must_fit_the_proxys_protocol() -> None:
    assert fault_problems("{fault: http_error, proxy: redis, duration: 1s}") == [
        'x.yaml:5: method[0].fault: http_error is an http fault and proxy "redis" is a tcp proxy (its faults: '
        "partition, down, latency, bandwidth, slow_close, timeout, reset_peer, slicer, limit_data, noop)"
    ]
    assert fault_problems("{fault: latency, proxy: chat_ws, duration: 1s}") == [
        'x.yaml:5: method[0].fault: latency is a tcp fault and proxy "chat_ws" is a websocket proxy (its faults: '
        "ws_drop, ws_delay, ws_duplicate, ws_reorder, ws_close, ws_refuse)"
    ]
    assert fault_problems("{fault: partition, proxy: llm, duration: 1s}") == [
        'x.yaml:5: method[0].fault: partition is for tcp proxies only and proxy "llm" is an http proxy (its faults: '
        "http_error, http_delay, sse_delay, sse_cut, sse_stall, sse_error, sse_malformed, fail_attempts)"
    ]
    fitting = (
        "{fault: ws_drop, proxy: chat_ws, duration: 1s}",
        "{fault: sse_cut, proxy: llm, duration: 1s}",
        "{fault: down, proxy: postgres, duration: 1s, toxicity: 0.5}",
    )
    for entry in fitting:
        assert len(load(HEAD + f"  - {entry}\n").method) == 1


def test_fields_that_do_not_apply() -> None:
    assert fault_problems("{fault: partition, proxy: redis, duration: 1s, stream: upstream, attributes: {}}") == [
        "x.yaml:5: method[0].attributes: does not apply to partition",
        "x.yaml:5: method[0].stream: does not apply to partition",
    ]
    assert fault_problems("{fault: pause, process: redis, duration: 1s, toxicity: 1}") == [
        "x.yaml:5: method[0].toxicity: does not apply to pause"
    ]
    assert fault_problems("{fault: sse_delay, proxy: llm, duration: 1s, stream: upstream}") == [
        "x.yaml:5: method[0].stream: http faults act on responses: stream must be downstream"
    ]
    assert load(HEAD + "  - {fault: ws_drop, proxy: chat_ws, duration: 1s, stream: upstream}\n").method[0].stream == (
        "upstream"
    )


def test_attributes_are_checked_by_the_engines_rules() -> None:
    assert fault_problems("{fault: latency, proxy: redis, duration: 1s, attributes: {latency: lots, jiter: 5}}") == [
        "x.yaml:5: method[0].attributes.jiter: unknown attribute 'jiter' for toxic type latency (valid: jitter, "
        "latency)",
        "x.yaml:5: method[0].attributes.latency: attribute 'latency' of toxic type latency must be an integer >= 0 "
        "(ms), got str 'lots'",
    ]
    [message] = fault_problems("{fault: http_error, proxy: llm, duration: 1s, attributes: {status: 200}}")
    assert message.startswith("x.yaml:5: method[0].attributes.status: attribute 'status' of toxic type http_error")
    assert fault_problems("{fault: ws_drop, proxy: chat_ws, duration: 1s, attributes: {value: x}}") == [
        "x.yaml:5: method[0].attributes.value: attribute 'value' of toxic type ws_drop needs a 'field' to compare "
        "with, "
        "got value 'x' and no field"
    ]
    # a rule across attributes is met by the others: no problem, and a wrong neighbour is named alone
    ws_fault = "{fault: ws_drop, proxy: chat_ws, duration: 1s, attributes: {field: type, value: agent_thinking%s}}"
    assert load(HEAD + f"  - {ws_fault % ''}\n").method[0].attributes == {"field": "type", "value": "agent_thinking"}
    [message] = fault_problems(ws_fault % ", bogus: 2")
    assert message.startswith("x.yaml:5: method[0].attributes.bogus: unknown attribute 'bogus'"), message
    # checked without an environment too: the fault type says which toxic it is
    assert len(fault_problems("{fault: latency, proxy: redis, duration: 1s, attributes: {latency: -1}}", None)) == 1


def test_attribute_lines_in_block_style() -> None:
    entry = (
        "  - fault: latency\n    proxy: redis\n    duration: 1s\n    attributes:\n      latency: 5\n      bogus: 1\n"
    )
    text = HEAD + entry
    assert problems(text) == [
        "x.yaml:10: method[0].attributes.bogus: unknown attribute 'bogus' for toxic type latency (valid: jitter, "
        "latency)"
    ]


# -- discovery -----------------------------------------------------------------------------------


def test_discover_lists_yaml_files_under_directories(tmp_path: Path) -> None:
    for name in ("b.yaml", "a.yml", "notes.md", "sub/c.yaml", ".hidden/d.yaml", ".e.yaml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    single = tmp_path / "notes.md"
    assert discover([tmp_path, single, tmp_path / "b.yaml"]) == [
        tmp_path / "a.yml",
        tmp_path / "b.yaml",
        tmp_path / "sub" / "c.yaml",
        single,  # named explicitly: taken whatever its suffix
    ]
    with pytest.raises(InvalidInput, match=r"^.*nope: no such file or directory$"):
        discover([tmp_path / "nope"])
