"""The chat back-end's retry policy for LLM calls (pure: no I/O)."""

from __future__ import annotations

from email.utils import formatdate
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaos_service.sandbox.chat.config import ChatSettings
from chaos_service.sandbox.chat.retry import backoff, is_retryable, retry_delay, server_wait

NOW = 1_764_000_000.0


def settings(*defects: str, **overrides: Any) -> ChatSettings:
    return ChatSettings(
        postgres_url="postgresql://unused",
        redis_url="redis://unused",
        llm_url="http://unused/v1",
        jwt_secret="secret",
        defects=frozenset(defects),
        **overrides,
    )


DEFAULT = settings()
DEFECTIVE = settings("no_retry_on_llm_503")


def test_backoff_doubles_from_a_quarter_second_up_to_two_seconds() -> None:
    assert [retry_delay(n, status=503, settings=settings(llm_attempts=8)) for n in range(1, 8)] == [
        0.25,
        0.5,
        1.0,
        2.0,
        2.0,
        2.0,
        2.0,
    ]


def test_four_attempts_in_all_by_default() -> None:
    assert [retry_delay(n, status=None, settings=DEFAULT) for n in (1, 2, 3, 4, 5)] == [0.25, 0.5, 1.0, None, None]


@pytest.mark.parametrize("status", [None, 408, 429, 500, 502, 503, 504, 529, 599])
def test_transient_failures_are_retried(status: int | None) -> None:
    assert retry_delay(1, status=status, settings=DEFAULT) == 0.25


@pytest.mark.parametrize("status", [200, 204, 400, 401, 403, 404, 409, 413, 422, 499])
def test_the_requests_own_faults_are_not_retried(status: int) -> None:
    assert retry_delay(1, status=status, settings=DEFAULT) is None


def test_retry_after_seconds_is_honoured_instead_of_the_backoff() -> None:
    assert retry_delay(1, status=429, retry_after="3", settings=DEFAULT) == 3.0
    assert retry_delay(3, status=503, retry_after="0", settings=DEFAULT) == 0.0
    assert retry_delay(1, status=429, retry_after="1.5", settings=DEFAULT) == 1.5


def test_retry_after_ms_wins_over_retry_after() -> None:
    assert retry_delay(1, status=429, retry_after="2", retry_after_ms="1500", settings=DEFAULT) == 1.5
    assert retry_delay(1, status=429, retry_after_ms="250.5", settings=DEFAULT) == pytest.approx(0.2505)


def test_retry_after_as_an_http_date() -> None:
    later = formatdate(NOW + 7, usegmt=True)
    assert retry_delay(1, status=503, retry_after=later, settings=DEFAULT, now=NOW) == pytest.approx(7.0)
    earlier = formatdate(NOW - 30, usegmt=True)
    assert retry_delay(1, status=503, retry_after=earlier, settings=DEFAULT, now=NOW) == 0.0


def test_the_servers_wait_is_capped_at_ten_seconds() -> None:
    assert retry_delay(1, status=429, retry_after="120", settings=DEFAULT) == 10.0
    assert retry_delay(1, status=429, retry_after_ms="600000", settings=DEFAULT) == 10.0
    far = formatdate(NOW + 3600, usegmt=True)
    assert retry_delay(1, status=429, retry_after=far, settings=DEFAULT, now=NOW) == 10.0


@pytest.mark.parametrize("header", ["", "soon", "-1", "nan", "inf", "1e999", "Mon, 99 Foo 2025"])
def test_an_unusable_retry_after_falls_back_to_the_backoff(header: str) -> None:
    assert server_wait(header, None, now=NOW) is None
    assert retry_delay(2, status=429, retry_after=header, retry_after_ms=header, settings=DEFAULT, now=NOW) == 0.5


def test_retry_after_does_not_extend_the_attempts() -> None:
    assert retry_delay(4, status=429, retry_after="1", settings=DEFAULT) is None


def test_the_defect_makes_a_503_final_and_nothing_else() -> None:
    assert retry_delay(1, status=503, settings=DEFECTIVE) is None
    assert retry_delay(1, status=503, retry_after="1", settings=DEFECTIVE) is None
    assert retry_delay(1, status=429, settings=DEFECTIVE) == 0.25
    assert retry_delay(1, status=502, settings=DEFECTIVE) == 0.25
    assert retry_delay(1, status=None, settings=DEFECTIVE) == 0.25


def test_attempts_are_counted_from_one() -> None:
    with pytest.raises(ValueError):
        retry_delay(0, status=None, settings=DEFAULT)
    with pytest.raises(ValueError):
        backoff(0, DEFAULT)


statuses = st.none() | st.integers(min_value=100, max_value=599)
headers = st.none() | st.text(max_size=12) | st.integers(-5, 10**6).map(str) | st.floats(allow_nan=True).map(str)
attempts = st.integers(min_value=1, max_value=200)
configs = st.builds(
    lambda n, base, cap, wait: settings(llm_attempts=n, llm_backoff=base, llm_backoff_max=cap, retry_after_max=wait),
    st.integers(min_value=1, max_value=10),
    st.floats(min_value=0.0, max_value=5.0),
    st.floats(min_value=0.0, max_value=5.0),
    st.floats(min_value=0.0, max_value=30.0),
)


@given(attempts, statuses, headers, headers, configs)
def test_a_delay_never_exceeds_its_cap(
    attempt: int, status: int | None, after: str | None, after_ms: str | None, config: ChatSettings
) -> None:
    delay = retry_delay(attempt, status=status, retry_after=after, retry_after_ms=after_ms, settings=config, now=NOW)
    if delay is None:
        return
    assert delay >= 0.0
    if server_wait(after, after_ms, now=NOW) is None:
        assert delay <= config.llm_backoff_max
    else:
        assert delay <= config.retry_after_max


@given(attempts, statuses, headers, configs)
def test_never_a_retry_past_the_last_attempt(
    attempt: int, status: int | None, after: str | None, config: ChatSettings
) -> None:
    delay = retry_delay(attempt, status=status, retry_after=after, settings=config, now=NOW)
    if attempt >= config.llm_attempts:
        assert delay is None
    else:
        assert (delay is None) == (not is_retryable(status, config))


@given(attempts, statuses, headers, headers, st.integers(min_value=1, max_value=10))
def test_the_defect_changes_only_503(
    attempt: int, status: int | None, after: str | None, after_ms: str | None, attempts_in_all: int
) -> None:
    def delay(config: ChatSettings) -> float | None:
        return retry_delay(attempt, status=status, retry_after=after, retry_after_ms=after_ms, settings=config, now=NOW)

    normal = delay(settings(llm_attempts=attempts_in_all))
    defective = delay(settings("no_retry_on_llm_503", llm_attempts=attempts_in_all))
    if status == 503:
        assert defective is None
    else:
        assert defective == normal
