"""The LLM stream probe against the sandbox's LLM stub, through the http proxy, healthy and under faults."""

from __future__ import annotations

import time
from typing import Any

import pytest

from chaos_service.errors import InvalidInput
from chaos_service.probes.kinds.base import nearest_rank
from chaos_service.probes.kinds.llm import LlmStatusError, LlmStreamProbe, StreamBroken
from chaos_service.probes.records import Outcome
from chaos_service.sandbox.environment import Environment
from tests.probes.kinds.support import SLACK, Faults, attempt, scheduled

CHAT = "/v1/chat/completions"


def stub_probe(env: Environment, tokens: int = 20, pace_ms: int = 5, **options: Any) -> LlmStreamProbe:
    """A probe whose reply the stub scripts: ``tokens`` tokens, ``pace_ms`` apart."""
    return LlmStreamProbe.from_environment(env, extra_body={"stub": {"tokens": tokens, "pace_ms": pace_ms}}, **options)


def test_a_healthy_stream_records_its_timeline(env: Environment) -> None:
    observation = attempt(stub_probe(env))
    assert observation.valid, observation.reason
    d = observation.details
    assert (d["attempts"], d["statuses"], d["tokens"], d["finish_reason"], d["done"]) == (1, [200], 20, "stop", True)
    assert d["events"] == 24  # a role chunk, 20 tokens, the finish chunk, the usage chunk and [DONE]
    assert 0 < d["headers_s"] <= d["first_event_s"] <= d["ttft_s"] < d["completed_s"] < 5
    assert (d["error"], d["malformed"], d["after_done"], d["partial_bytes"], d["keepalives"]) == (None, 0, 0, 0, 0)
    gaps = d["gaps_s"]
    assert len(gaps) == 19
    assert d["gap_percentile"] == "nearest-rank"
    assert d["gap_max_s"] == max(gaps)
    assert d["gap_p99_s"] == nearest_rank(gaps, 99)
    assert all(gap >= 0 for gap in gaps)


def test_open_loop_streams_all_pass(env: Environment) -> None:
    results = scheduled(stub_probe(env, tokens=5, pace_ms=0), attempts=3, period=0.05)
    assert [r.outcome for r in results] == [Outcome.OK] * 3
    assert [r.details["tokens"] for r in results] == [5] * 3


def test_a_stream_cut_cleanly_is_invalid_without_done(env: Environment, faults: Faults) -> None:
    with faults.toxic("llm", "sse_cut", after=5, path=CHAT):
        (result,) = scheduled(stub_probe(env), attempts=1)
    assert result.outcome is Outcome.INVALID
    assert result.error == "the stream ended without [DONE]; no finish_reason"
    assert (result.details["done"], result.details["events"], result.details["tokens"]) == (False, 5, 4)


def test_a_stream_reset_mid_body_is_an_error(env: Environment, faults: Faults) -> None:
    with faults.toxic("llm", "sse_cut", after=5, mode="reset", path=CHAT), pytest.raises(StreamBroken) as broken:
        attempt(stub_probe(env))
    assert str(broken.value).startswith("the stream broke after 5 event(s) and 4 token(s)")


def test_an_in_band_error_is_invalid(env: Environment, faults: Faults) -> None:
    with faults.toxic("llm", "sse_error", after=3, message="overloaded", path=CHAT):
        observation = attempt(stub_probe(env))
    assert not observation.valid
    assert observation.reason is not None and observation.reason.startswith("error event: overloaded")
    assert observation.details["error"] == "overloaded"


def test_a_malformed_chunk_is_invalid(env: Environment, faults: Faults) -> None:
    with faults.toxic("llm", "sse_malformed", after=3, path=CHAT):
        observation = attempt(stub_probe(env))
    assert not observation.valid
    assert observation.reason == "1 malformed event(s)"
    assert (observation.details["done"], observation.details["tokens"]) == (True, 20)


def test_a_late_response_shows_in_ttft_and_fails_its_threshold(env: Environment, faults: Faults) -> None:
    with faults.toxic("llm", "http_delay", delay=300, path=CHAT):
        observation = attempt(stub_probe(env, max_ttft=0.2))
    assert not observation.valid
    assert observation.reason is not None and observation.reason.startswith("TTFT ")
    assert "over the 200.0 ms threshold" in observation.reason
    assert observation.details["headers_s"] >= 0.3 - SLACK
    assert observation.details["ttft_s"] >= 0.3 - SLACK
    assert attempt(stub_probe(env, max_ttft=0.2)).valid


def test_a_slow_first_token_after_early_headers_is_timed(env: Environment) -> None:
    probe = LlmStreamProbe.from_environment(env, extra_body={"stub": {"tokens": 3, "first_token_ms": 200}})
    observation = attempt(probe)
    assert observation.valid, observation.reason
    assert observation.details["headers_s"] < 0.2 - SLACK <= observation.details["ttft_s"]


def test_a_503_before_the_stream_is_retried(env: Environment, faults: Faults) -> None:
    with faults.toxic("llm", "fail_attempts", attempts=1, status=503, path=CHAT):
        (result,) = scheduled(stub_probe(env, retries=2), attempts=1)
    assert result.outcome is Outcome.OK, result.error
    assert (result.details["attempts"], result.details["statuses"]) == (2, [503, 200])
    assert result.details["ttft_s"] >= result.details["headers_s"]


def test_an_error_status_after_the_retries_is_an_error(env: Environment, faults: Faults) -> None:
    with faults.toxic("llm", "fail_attempts", attempts=3, status=429, path=CHAT):
        with pytest.raises(LlmStatusError, match=r"^HTTP 429 after 3 attempt\(s\): "):
            attempt(stub_probe(env, retries=2))
        with pytest.raises(LlmStatusError, match=r"^HTTP 429 after 1 attempt\(s\): "):
            attempt(stub_probe(env))  # no retries by default


def test_a_client_error_is_not_retried(env: Environment) -> None:
    probe = LlmStreamProbe.from_environment(env, model="no-such-model", retries=2)
    with pytest.raises(LlmStatusError, match=r"^HTTP 404 after 1 attempt\(s\): The model"):
        attempt(probe)


def test_a_retry_waits_for_the_backoff(env: Environment, faults: Faults) -> None:
    with faults.toxic("llm", "fail_attempts", attempts=1, status=503, path=CHAT):
        observation = attempt(stub_probe(env, tokens=3, pace_ms=0, retries=1, backoff=0.3))
    assert observation.valid, observation.reason
    assert observation.details["statuses"] == [503, 200]
    assert observation.details["headers_s"] >= 0.3 - SLACK  # the retry's answer, sent after the pause


def test_a_slow_stream_fails_the_latency_threshold(env: Environment, faults: Faults) -> None:
    probe = stub_probe(env, tokens=5, pace_ms=0, max_latency=0.3)
    with faults.toxic("llm", "sse_delay", delay=50, path=CHAT):  # 9 events, 50 ms each
        observation = attempt(probe)
    assert not observation.valid
    assert observation.reason is not None and observation.reason.startswith("latency ")  # not TTFT: unchecked
    assert "over the 300.0 ms threshold" in observation.reason
    assert observation.details["completed_s"] > 0.3
    healthy = attempt(probe)
    assert healthy.valid, healthy.reason


def test_a_stalled_stream_times_out_at_the_deadline(env: Environment, faults: Faults) -> None:
    began = time.monotonic()
    with faults.toxic("llm", "sse_stall", after=3, duration=0, path=CHAT):
        (result,) = scheduled(stub_probe(env), attempts=1, deadline=0.4)
    assert result.outcome is Outcome.TIMEOUT
    assert result.finished == result.scheduled + 0.4
    assert time.monotonic() - began < 3


def test_a_stall_past_the_read_timeout_is_an_error(env: Environment, faults: Faults) -> None:
    with faults.toxic("llm", "sse_stall", after=3, duration=0, path=CHAT):
        (result,) = scheduled(stub_probe(env, read_timeout=0.2), attempts=1, deadline=5)
    assert result.outcome is Outcome.ERROR
    assert result.error is not None and result.error.startswith("StreamBroken: the stream broke after 3 event(s)")
    assert "ReadTimeout" in result.error


def test_keepalives_during_a_stall_are_counted(env: Environment, faults: Faults) -> None:
    with faults.toxic("llm", "sse_stall", after=3, duration=150, keepalive=40, path=CHAT):
        observation = attempt(stub_probe(env, tokens=5))
    assert observation.valid, observation.reason
    assert observation.details["keepalives"] >= 2
    assert observation.details["gap_max_s"] >= 0.15 - SLACK


def test_options_are_checked() -> None:
    with pytest.raises(InvalidInput, match="retries"):
        LlmStreamProbe("http://127.0.0.1:1/v1", retries=-1)
    with pytest.raises(InvalidInput, match="max_ttft"):
        LlmStreamProbe("http://127.0.0.1:1/v1", max_ttft=0)
    with pytest.raises(InvalidInput, match="backoff"):
        LlmStreamProbe("http://127.0.0.1:1/v1", backoff=-1)
    with pytest.raises(InvalidInput, match="max_latency"):
        LlmStreamProbe("http://127.0.0.1:1/v1", max_latency=0)
