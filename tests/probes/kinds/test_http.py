"""The HTTP probe against the sandbox's /health and the LLM stub, healthy and under faults."""

from __future__ import annotations

import json

import pytest

from chaos_service.errors import InvalidInput
from chaos_service.probes.kinds.http import HttpProbe, UnexpectedStatus
from chaos_service.probes.records import Outcome
from chaos_service.sandbox.environment import Environment
from tests.probes.kinds.support import SLACK, Faults, attempt, scheduled


def test_a_healthy_back_end_passes_the_health_probe(env: Environment) -> None:
    probe = HttpProbe.health(env)
    assert probe.name == "health"
    results = scheduled(probe, attempts=3)
    assert [r.outcome for r in results] == [Outcome.OK] * 3
    for result in results:
        details = result.details
        assert (details["status"], details["field"]) == (200, "ok")
        assert 0 < details["headers_s"] <= details["total_s"] < 5
        assert details["bytes"] > 0


def test_a_field_that_differs_is_invalid(env: Environment, faults: Faults) -> None:
    with faults.disabled("redis"):  # Redis is degradable: /health still answers 200
        observation = attempt(HttpProbe.health(env))
    assert not observation.valid
    assert observation.reason == "status is 'degraded', expected 'ok'"
    assert observation.details["field"] == "degraded"


def test_an_error_status_is_an_error(env: Environment, faults: Faults) -> None:
    with faults.disabled("postgres"):  # Postgres is not: /health answers 503
        (result,) = scheduled(HttpProbe.health(env), attempts=1)
    assert result.outcome is Outcome.ERROR
    assert result.error is not None and result.error.startswith("UnexpectedStatus: HTTP 503")


def test_latency_behind_the_endpoint_fails_the_threshold(env: Environment, faults: Faults) -> None:
    probe = HttpProbe.health(env, max_latency=0.15)
    with faults.toxic("postgres", "latency", latency=200):
        observation = attempt(probe)
    assert not observation.valid
    assert observation.reason is not None and "over the 150.0 ms threshold" in observation.reason
    assert observation.details["total_s"] >= 0.2 - SLACK


def test_expected_statuses_and_nested_fields(env: Environment) -> None:
    llm = env.endpoints["llm"]
    listed = attempt(HttpProbe(f"{llm}/models", json_field="data.0.object", json_value="model"))
    assert listed.valid, listed.reason
    assert listed.details["field"] == "model"
    missing = attempt(HttpProbe(f"{llm}/models/nope", expected_status={404}, json_field="error.code"))
    assert missing.valid, missing.reason
    assert missing.details["field"] == "model_not_found"
    with pytest.raises(UnexpectedStatus, match="HTTP 404"):
        attempt(HttpProbe(f"{llm}/models/nope"))
    wrong = attempt(HttpProbe(f"{llm}/models", expected_status=204, json_field="data.99"))
    assert not wrong.valid
    assert wrong.reason == "unexpected status 200; the body has no data.99"


def test_an_injected_error_through_the_llm_proxy_is_an_error(env: Environment, faults: Faults) -> None:
    probe = HttpProbe(f"{env.endpoints['llm']}/models", method="get")
    with faults.toxic("llm", "http_error", status=503, path="/v1/models"):
        (result,) = scheduled(probe, attempts=1)
    assert result.outcome is Outcome.ERROR
    assert result.error is not None and "HTTP 503" in result.error
    assert attempt(probe).valid


def test_a_refused_connection_is_an_error(env: Environment, faults: Faults) -> None:
    probe = HttpProbe(f"{env.endpoints['llm']}/models")
    with faults.disabled("llm"):
        (result,) = scheduled(probe, attempts=1)
    assert result.outcome is Outcome.ERROR
    assert result.error is not None and result.error.startswith("ConnectError")


def test_a_body_that_is_not_json_fails_a_field_check(env: Environment, faults: Faults) -> None:
    probe = HttpProbe(f"{env.endpoints['llm']}/models", expected_status=502, json_field="error.code")
    with faults.toxic("llm", "http_error", status=502, html=True, path="/v1/models"):
        observation = attempt(probe)  # a gateway's HTML error page
    assert not observation.valid
    assert observation.reason == "the body is not JSON"
    assert observation.details["status"] == 502


def test_request_headers_reach_the_server(env: Environment, faults: Faults) -> None:
    # fail_attempts fails a request's first attempt unless its x-stainless-retry-count header numbers it past that
    url = f"{env.endpoints['llm']}/models"
    numbered = HttpProbe(url, headers={"x-stainless-retry-count": "1"})
    with faults.toxic("llm", "fail_attempts", attempts=1, status=503, path="/v1/models"):
        observation = attempt(numbered)
        with pytest.raises(UnexpectedStatus, match="HTTP 503"):
            attempt(HttpProbe(url))  # the same request without the header
    assert observation.valid, observation.reason


def test_a_request_body_reaches_the_server(env: Environment) -> None:
    url = f"{env.endpoints['llm']}/chat/completions"
    request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stub": {"text": "pong"}}
    probe = HttpProbe(
        url,
        method="POST",
        headers={"content-type": "application/json"},
        body=json.dumps(request).encode(),
        json_field="choices.0.message.content",
        json_value="pong",  # the stub answers what the body scripts
    )
    observation = attempt(probe)
    assert observation.valid, observation.reason
    assert observation.details["field"] == "pong"
    with pytest.raises(UnexpectedStatus, match="HTTP 400"):
        attempt(HttpProbe(url, method="POST"))  # no body


def test_options_are_checked() -> None:
    with pytest.raises(InvalidInput, match="timeout"):
        HttpProbe("http://127.0.0.1:1/", timeout=0)
