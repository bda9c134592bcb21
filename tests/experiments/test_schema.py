"""The experiment file's formats and shape: durations, comparisons, names, types and options.

Every rule is checked through the loader, with the exact message an author reads
(``file:line: path: message``); no environment is needed for any of these.
"""

from __future__ import annotations

import math
import textwrap

import pytest

from chaos_service.experiments.durations import format_duration, parse_comparison, parse_duration, shown
from chaos_service.experiments.loader import InvalidExperiment, parse_experiment
from chaos_service.experiments.plan import PROBE_METRICS, SLO_METRICS, Comparison, ExperimentPlan, Settings
from chaos_service.experiments.schema import GuardrailModel, SloModel, SteadyStateModel, fields_of

HEAD = """\
title: t
probes:
  h: {type: http, url: "http://127.0.0.1:1/health"}
method:
  - {fault: noop, proxy: p, duration: 1s}
"""


def load(text: str) -> ExperimentPlan:
    return parse_experiment(textwrap.dedent(text), "x.yaml", variables={})


def problems(text: str) -> list[str]:
    with pytest.raises(InvalidExperiment) as caught:
        load(text)
    return str(caught.value).splitlines()


# -- durations -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(5, 5.0), (0.25, 0.25), ("250ms", 0.25), ("5s", 5.0), ("1.5m", 90.0), ("2h", 7200.0), ("3", 3.0),
     (" 10 s ", 10.0), (".5s", 0.5), ("1e3ms", 1.0)],
)  # fmt: skip
def test_durations_are_seconds_or_strings_with_a_unit(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("value", "shown_as"),
    [("soon", '"soon"'), (-1, "-1"), (0, "0"), ("0s", '"0s"'), (True, "true"), (None, "null"), ("5 sec", '"5 sec"'),
     (math.inf, "inf"), ([1], "a list"), ({"a": 1}, "a mapping"), ("-5s", '"-5s"')],
)  # fmt: skip
def test_a_bad_duration_is_refused_with_what_was_given(value: object, shown_as: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(value)
    assert str(caught.value) == f"must be a positive duration like 5s, 250ms or 1.5m, not {shown_as}"


def test_zero_is_a_duration_only_where_allowed() -> None:
    assert parse_duration("0s", allow_zero=True) == 0.0
    with pytest.raises(ValueError, match=r"^must be a duration \(0 or more\) like 5s, 250ms or 1.5m, not -1$"):
        parse_duration(-1, allow_zero=True)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0.25, 5.0, 90.0, 7200.0, 1.5)] == ["250ms", "5s", "90s", "2h", "1.5s"]


def test_shown_quotes_strings_and_spells_the_rest_as_yaml() -> None:
    assert [shown(v) for v in ("a", 1, 1.0, 0.5, None, False)] == ['"a"', "1", "1", "0.5", "null", "false"]
    assert shown("x" * 200).endswith('…"') and len(shown("x" * 200)) == 78


# -- comparisons ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "text", "expected"),
    [
        ("success_rate", ">= 0.99", Comparison("success_rate", ">=", 0.99, "success_rate >= 0.99")),
        ("success_rate", ">=99%", Comparison("success_rate", ">=", 0.99, "success_rate >= 99%")),
        ("p95_latency", "<= 10s", Comparison("p95_latency", "<=", 10.0, "p95_latency <= 10s")),
        ("p95_latency", "< 250ms", Comparison("p95_latency", "<", 0.25, "p95_latency < 250ms")),
        ("recovery_time", "<= 30", Comparison("recovery_time", "<=", 30.0, "recovery_time <= 30")),
        ("detection_time", "< 1.5m", Comparison("detection_time", "<", 90.0, "detection_time < 1.5m")),
        ("cross_user_leaks", "== 0", Comparison("cross_user_leaks", "==", 0.0, "cross_user_leaks == 0")),
        ("lost_events", " != 2 ", Comparison("lost_events", "!=", 2.0, "lost_events != 2")),
        ("event_delivery", "> 0.5", Comparison("event_delivery", ">", 0.5, "event_delivery > 0.5")),
    ],
)
def test_comparisons(metric: str, text: str, expected: Comparison) -> None:
    assert parse_comparison(metric, text) == expected


@pytest.mark.parametrize(
    ("metric", "value", "message"),
    [
        ("success_rate", "high", 'must be a comparison like ">= 0.99" (an operator and a number), not "high"'),
        ("success_rate", 0.99, 'must be a comparison like ">= 0.99" (an operator and a number), not 0.99'),
        ("p95_latency", "10s", 'must be a comparison like "<= 30s" (an operator and a number), not "10s"'),
        ("lost_events", "=> 1", 'must be a comparison like "== 0" (an operator and a number), not "=> 1"'),
        ("success_rate", ">= 5s", 'success_rate is not a time: write a number without a unit, not ">= 5s"'),
        ("p95_latency", "<= 5%", 'p95_latency is not a rate: write it without %, not "<= 5%"'),
        ("success_rate", ">= 99", 'success_rate is a fraction from 0 to 1 (or a percentage like 99%), not ">= 99"'),
        ("lost_events", "> -1", 'lost_events cannot be negative, not "> -1"'),
    ],
)
def test_bad_comparisons(metric: str, value: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_comparison(metric, value)
    assert str(caught.value) == message


def test_check_models_have_a_field_per_metric_of_the_plan() -> None:
    assert fields_of(SteadyStateModel) == ["probe", *PROBE_METRICS]
    assert fields_of(GuardrailModel) == ["probe", "for", *PROBE_METRICS]
    assert fields_of(SloModel) == list(SLO_METRICS)


# -- the document --------------------------------------------------------------------------------


def test_a_minimal_file_takes_every_default() -> None:
    plan = load(HEAD)
    assert plan.title == "t" and plan.description == "" and plan.tags == () and plan.catches is None
    assert plan.settings == Settings()
    assert plan.steady_state == plan.abort_when == plan.slo == plan.rollbacks == ()


def test_required_fields_and_unknown_keys() -> None:
    assert problems("description: d\ntitel: t\n") == [
        "x.yaml:1: method: required",
        "x.yaml:1: probes: required",
        "x.yaml:1: title: required",
        "x.yaml:2: titel: unknown field; did you mean title?",
    ]


def test_an_unknown_key_without_a_close_match_lists_the_fields() -> None:
    assert problems(HEAD + "settings: {zzz: 1}\n") == [
        "x.yaml:6: settings.zzz: unknown field; fields here: warmup, recovery_window, steady_window, k, ttl_margin, "
        "exclusive"
    ]


def test_title_tags_and_catches() -> None:
    assert problems(HEAD.replace("title: t", 'title: "  "') + "tags: [a, '', 3]\ncatches: nope\n") == [
        "x.yaml:1: title: must not be empty",
        "x.yaml:6: tags[1]: must not be empty",
        "x.yaml:6: tags[2]: must be a string, not 3",
        'x.yaml:7: catches: unknown seeded defect "nope"; defects: lose_events_on_resume, reorder_tool_events, '
        "leak_events_after_reconnect, no_retry_on_llm_503, postgres_pool_never_reconnects, redis_hard_dependency",
    ]
    assert load(HEAD + "tags: [a, b]\ncatches: redis_hard_dependency\n").catches == "redis_hard_dependency"


def test_probes_and_method_must_not_be_empty() -> None:
    assert problems("title: t\nprobes: {}\nmethod: []\n") == [
        "x.yaml:2: probes: declare at least one probe",
        "x.yaml:3: method: list at least one fault",
    ]
    assert problems("title: t\nprobes: [a]\nmethod: {a: 1}\n") == [
        "x.yaml:2: probes: must be a mapping, not a list",
        "x.yaml:3: method: must be a list, not a mapping",
    ]


def test_settings() -> None:
    plan = load(HEAD + "settings: {warmup: 0, recovery_window: 1m, steady_window: 500ms, k: 5, ttl_margin: 0s}\n")
    assert plan.settings == Settings(warmup=0.0, recovery_window=60.0, steady_window=0.5, k=5, ttl_margin=0.0)
    assert problems(
        HEAD + "settings: {warmup: -1s, recovery_window: 0, steady_window: 20s, k: 0, ttl_margin: x}\n"
    ) == [
        "x.yaml:6: settings.k: must be 1 or more, not 0",
        "x.yaml:6: settings.recovery_window: must be a positive duration like 5s, 250ms or 1.5m, not 0",
        'x.yaml:6: settings.ttl_margin: must be a duration (0 or more) like 5s, 250ms or 1.5m, not "x"',
        'x.yaml:6: settings.warmup: must be a duration (0 or more) like 5s, 250ms or 1.5m, not "-1s"',
    ]
    assert problems(HEAD + "settings: {recovery_window: 10s, steady_window: 20s, k: 2.5}\n") == [
        "x.yaml:6: settings.k: must be a whole number, not 2.5",
        "x.yaml:6: settings.steady_window: must not be longer than recovery_window (10 s): it is read from its end",
    ]


# -- probes --------------------------------------------------------------------------------------


def probe_problems(definition: str) -> list[str]:
    return problems(HEAD.replace('h: {type: http, url: "http://127.0.0.1:1/health"}', f"h: {definition}"))


def probe_options(definition: str) -> dict[str, object]:
    text = HEAD.replace('h: {type: http, url: "http://127.0.0.1:1/health"}', f"h: {definition}")
    return dict(load(text).probes[0].options)


def test_probe_type_is_required_and_known() -> None:
    assert probe_problems("{every: 1s}") == [
        "x.yaml:3: probes.h.type: required: one of http, postgres, redis, llm, reconnect, websocket_chat"
    ]
    assert probe_problems("{type: pg}") == [
        'x.yaml:3: probes.h.type: must be one of http, postgres, redis, llm, reconnect, websocket_chat, not "pg"'
    ]
    assert probe_problems("[http]") == [
        "x.yaml:3: probes.h: must be a mapping with a type (http, postgres, redis, llm, reconnect, websocket_chat), "
        "not a list"
    ]


def test_common_probe_fields() -> None:
    assert probe_problems("{type: redis, every: fast, deadline: 0, endpoint: 'a b'}") == [
        "x.yaml:3: probes.h.deadline: must be a positive duration like 5s, 250ms or 1.5m, not 0",
        "x.yaml:3: probes.h.endpoint: must be a name of letters, digits and _ . - (up to 64 characters, starting "
        'with a letter or digit), not "a b"',
        'x.yaml:3: probes.h.every: must be a positive duration like 5s, 250ms or 1.5m, not "fast"',
    ]


def test_options_belong_to_their_type() -> None:
    assert probe_problems("{type: redis, users: 3, contnet: x}") == [
        "x.yaml:3: probes.h.contnet: unknown field; fields here: type, endpoint, url, every, deadline, max_latency",
        "x.yaml:3: probes.h.users: unknown field; fields here: type, endpoint, url, every, deadline, max_latency",
    ]
    assert probe_problems("{type: websocket_chat, contnet: x}") == [
        "x.yaml:3: probes.h.contnet: unknown field; did you mean content?"
    ]


def test_http_options() -> None:
    options = probe_options(
        "{type: http, endpoint: health, method: post, expect_status: [200, 204], json: {field: status, value: ok},"
        " max_latency: 300ms, headers: {X-A: b}, body: hi}"
    )
    assert options == {
        "method": "POST",
        "expect_status": [200, 204],
        "json": {"field": "status", "value": "ok"},
        "max_latency": 0.3,
        "headers": {"X-A": "b"},
        "body": "hi",
    }
    assert probe_options("{type: http, endpoint: health, json: {field: status}}") == {"json": {"field": "status"}}
    assert probe_problems("{type: http, endpoint: health, method: YEET, expect_status: 700, json: {feld: a}}") == [
        "x.yaml:3: probes.h.expect_status: must be an HTTP status (100-599) or a list of them, not 700",
        "x.yaml:3: probes.h.json.feld: unknown field; did you mean field?",
        "x.yaml:3: probes.h.json.field: required",
        'x.yaml:3: probes.h.method: must be GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS, not "YEET"',
    ]
    assert probe_problems("{type: http, endpoint: health, expect_status: [200, x], headers: {a: [1]}}") == [
        "x.yaml:3: probes.h.expect_status: must be an HTTP status (100-599) or a list of them, not a list",
        "x.yaml:3: probes.h.headers.a: must be a string, not a list",
    ]


def test_postgres_redis_and_reconnect_options() -> None:
    assert probe_options("{type: postgres, query: 'SELECT 2', expected: 2, max_latency: 1s}") == {
        "query": "SELECT 2",
        "expected": 2,
        "max_latency": 1.0,
    }
    assert probe_problems("{type: postgres, expected: [1]}") == [
        "x.yaml:3: probes.h.expected: must be a single value (text, a number, true or false), not a list"
    ]
    assert probe_options("{type: redis, max_latency: 50ms}") == {"max_latency": 0.05}
    assert probe_options("{type: reconnect, user: probe-1}") == {"user": "probe-1"}
    assert probe_problems("{type: reconnect, user: 'a b'}") == [
        'x.yaml:3: probes.h.user: must be a user id of letters, digits and _ . - @ (up to 64), not "a b"'
    ]


def test_llm_options() -> None:
    options = probe_options(
        "{type: llm, model: m, prompt: p, extra_body: {stub: {tokens: 5}}, retries: 2, backoff: 0, max_ttft: 2s}"
    )
    assert options == {
        "model": "m",
        "prompt": "p",
        "extra_body": {"stub": {"tokens": 5}},
        "retries": 2,
        "backoff": 0.0,
        "max_ttft": 2.0,
    }
    assert probe_problems("{type: llm, retries: -1, extra_body: 3, max_ttft: soon}") == [
        "x.yaml:3: probes.h.extra_body: must be a mapping, not 3",
        'x.yaml:3: probes.h.max_ttft: must be a positive duration like 5s, 250ms or 1.5m, not "soon"',
        "x.yaml:3: probes.h.retries: must be 0 or more, not -1",
    ]


def test_websocket_chat_options() -> None:
    assert probe_options("{type: websocket_chat}") == {"users": 1}
    sequence = "agent_started agent_thinking* agent_completed"
    assert probe_options(f"{{type: websocket_chat, users: 1000, content: hi, sequence: '{sequence}'}}") == {
        "users": 1000,
        "content": "hi",
        "sequence": sequence,
    }
    assert probe_problems("{type: websocket_chat, users: 0, content: ''}") == [
        "x.yaml:3: probes.h.content: must not be empty",
        "x.yaml:3: probes.h.users: must be 1 or more, not 0",
    ]
    assert probe_problems("{type: websocket_chat, users: 1001}") == [
        "x.yaml:3: probes.h.users: must be 1000 or less, not 1001"
    ]


def test_a_sequence_must_compile_to_a_run_grammar() -> None:
    [message] = probe_problems("{type: websocket_chat, sequence: 'agent_started (('}")
    assert message.startswith("x.yaml:3: probes.h.sequence: not a valid run grammar: ")
    assert "never closed" in message
    [message] = probe_problems("{type: websocket_chat, sequence: 'agent_started agent_dancing'}")
    assert message.startswith("x.yaml:3: probes.h.sequence: not a valid run grammar: ")
    assert "agent_dancing" in message


# -- checks --------------------------------------------------------------------------------------


def test_steady_state_checks_are_comparisons_of_probe_metrics() -> None:
    plan = load(HEAD + 'steady_state:\n  - {probe: h, p99_latency: "< 2s", success_rate: ">= 99%"}\n')
    assert plan.steady_state[0].checks == (
        Comparison("p99_latency", "<", 2.0, "p99_latency < 2s"),  # in the file's order
        Comparison("success_rate", ">=", 0.99, "success_rate >= 99%"),
    )
    assert problems(HEAD + 'steady_state:\n  - {probe: h, success_rate: "high", recovery_time: "< 1s"}\n') == [
        "x.yaml:7: steady_state[0].recovery_time: unknown field; fields here: probe, success_rate, p50_latency, "
        "p95_latency, p99_latency",
        'x.yaml:7: steady_state[0].success_rate: must be a comparison like ">= 0.99" (an operator and a number), '
        'not "high"',
    ]


def test_slo_keys_are_slo_metrics() -> None:
    plan = load(HEAD + 'slo: {cross_user_leaks: "== 0", recovery_time: "<= 30s", event_delivery: ">= 0.99"}\n')
    assert [str(c) for c in plan.slo] == ["cross_user_leaks == 0", "recovery_time <= 30s", "event_delivery >= 0.99"]
    assert problems(HEAD + "slo:\n  ordering_violation: '== 0'\n  lost_events: 0\n") == [
        "x.yaml:7: slo.ordering_violation: unknown field; did you mean ordering_violations?",
        'x.yaml:8: slo.lost_events: must be a comparison like "== 0" (an operator and a number), not 0',
    ]


# -- method entries ------------------------------------------------------------------------------


def method_problems(entries: str) -> list[str]:
    return problems(HEAD.replace("  - {fault: noop, proxy: p, duration: 1s}\n", entries))


def test_every_fault_needs_a_known_type_and_a_positive_duration() -> None:
    assert method_problems("  - {fault: explode, proxy: p}\n  - {fault: noop, proxy: p, duration: soon}\n") == [
        "x.yaml:5: method[0].duration: required",
        'x.yaml:5: method[0].fault: unknown fault "explode"; faults: partition, down, latency, bandwidth, slow_close, '
        "timeout, reset_peer, slicer, limit_data, noop, http_error, http_delay, sse_delay, sse_cut, sse_stall, "
        "sse_error, sse_malformed, fail_attempts, ws_drop, ws_delay, ws_duplicate, ws_reorder, ws_close, ws_refuse, "
        "pause, kill, restart, stop",
        'x.yaml:6: method[1].duration: must be a positive duration like 5s, 250ms or 1.5m, not "soon"',
    ]
    assert method_problems("  - {fault: noop, proxy: p, duration: 0}\n") == [
        "x.yaml:5: method[0].duration: must be a positive duration like 5s, 250ms or 1.5m, not 0"
    ]


def test_fault_fields() -> None:
    assert method_problems("  - {fault: latency, proxy: p, duration: 1s, stream: sideways, toxicity: 2}\n") == [
        'x.yaml:5: method[0].stream: must be upstream or downstream, not "sideways"',
        "x.yaml:5: method[0].toxicity: must be 1 or less, not 2",
    ]
    assert method_problems("  - {fault: latency, proxy: p, duration: 1s, toxicity: -0.5, attributes: [1]}\n") == [
        "x.yaml:5: method[0].attributes: must be a mapping, not a list",
        "x.yaml:5: method[0].toxicity: must be 0 or more, not -0.5",
    ]
    assert method_problems("  - {fault: noop, proxy: p, duration: 1s, at: 1s, after: x, delay: 1s}\n") == [
        "x.yaml:5: method[0].after: give at or after, not both",
        "x.yaml:5: method[0].delay: delay goes with after or with an entry that follows the previous one, not with at",
    ]
    assert method_problems("  - {fault: noop, proxy: p, duration: 1s, at: -1s, name: 'x/y'}\n") == [
        'x.yaml:5: method[0].at: must be a duration (0 or more) like 5s, 250ms or 1.5m, not "-1s"',
        "x.yaml:5: method[0].name: must be a name of letters, digits and _ . - (up to 64 characters, starting with "
        'a letter or digit), not "x/y"',
    ]


def test_a_pause_entry_has_only_a_pause() -> None:
    assert method_problems("  - {fault: noop, proxy: p, duration: 1s}\n  - {pause: 0}\n  - {pause: 2s, at: 1s}\n") == [
        "x.yaml:6: method[1].pause: must be a positive duration like 5s, 250ms or 1.5m, not 0",
        "x.yaml:7: method[2].at: unknown field; fields here: pause",
    ]
    assert method_problems("  - latency\n") == ['x.yaml:5: method[0]: must be a mapping, not "latency"']


# -- rollbacks -----------------------------------------------------------------------------------


def test_rollbacks() -> None:
    plan = load(
        HEAD + "rollbacks:\n  - {url: 'http://h/a', body: {x: 1}}\n  - {name: b, method: delete, url: 'https://h/b'}\n"
    )
    assert [(r.name, r.method, r.url, r.body) for r in plan.rollbacks] == [
        ("rollback-1", "POST", "http://h/a", {"x": 1}),
        ("b", "DELETE", "https://h/b", None),
    ]
    assert problems(HEAD + "rollbacks:\n  - {method: YEET, uri: x}\n") == [
        'x.yaml:7: rollbacks[0].method: must be GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS, not "YEET"',
        "x.yaml:7: rollbacks[0].uri: unknown field; did you mean url?",
        "x.yaml:7: rollbacks[0].url: required",
    ]
