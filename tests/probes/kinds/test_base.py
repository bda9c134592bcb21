"""What the probe kinds share: the nearest-rank percentile, the latency check and the verdict."""

from __future__ import annotations

import pytest

from chaos_service.probes.kinds.base import nearest_rank, too_slow, verdict


def test_nearest_rank_is_the_smallest_value_with_that_share_at_or_below_it() -> None:
    values = [float(v) for v in range(100, 0, -1)]
    assert nearest_rank(values, 99) == 99.0
    assert nearest_rank(values, 100) == 100.0
    assert nearest_rank(values, 50) == 50.0
    assert nearest_rank([1.0, 2.0, 3.0], 50) == 2.0
    assert nearest_rank([1.0, 2.0, 3.0], 99) == 3.0  # too few samples: p99 is the maximum
    assert nearest_rank([7.0], 0.001) == 7.0


@pytest.mark.parametrize("percent", [0, -1, 100.5])
def test_nearest_rank_refuses_a_percent_out_of_range(percent: float) -> None:
    with pytest.raises(ValueError, match="percentile"):
        nearest_rank([1.0], percent)


def test_nearest_rank_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="no values"):
        nearest_rank([], 50)


def test_too_slow_names_the_measure_and_the_threshold() -> None:
    assert too_slow(0.3, None) is None
    assert too_slow(0.1, 0.1) is None
    assert too_slow(0.25, 0.2, "TTFT") == "TTFT 250.0 ms over the 200.0 ms threshold"


def test_a_verdict_says_every_reason() -> None:
    ok = verdict([None, None], {"a_s": 1.0})
    assert (ok.valid, ok.reason, dict(ok.details)) == (True, None, {"a_s": 1.0})
    bad = verdict(["one", None, "two"], {})
    assert (bad.valid, bad.reason) == (False, "one; two")
