"""ws_refuse: the refusal a toxic describes (sending it is tested through the engine)."""

from __future__ import annotations

from chaos_service.ws_faults import Refuse


def test_retry_after_becomes_a_header_only_when_given() -> None:
    assert Refuse(status=503, retry_after=30).headers() == [("Retry-After", "30")]
    assert Refuse(status=503, retry_after=0).headers() == [("Retry-After", "0")]
    assert Refuse().headers() == []


def test_defaults() -> None:
    assert Refuse.from_attributes({}) == Refuse(status=503, retry_after=None, body="")
