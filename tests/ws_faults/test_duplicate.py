"""ws_duplicate: matching messages are repeated right after themselves."""

from __future__ import annotations

from chaos_service.ws_faults import Duplicate
from chaos_service.ws_faults.message import Close
from tests.ws_faults.relay_support import msg, stage_of, texts


def test_one_extra_copy_by_default() -> None:
    assert texts(stage_of(Duplicate()).push(msg("a"), 0.0)) == ["a", "a"]


def test_copies_extra_copies_of_matching_messages_only() -> None:
    stage = stage_of(Duplicate(field="type", value="token", copies=2))
    token, other = '{"type": "token"}', '{"type": "done"}'
    assert texts(stage.push(msg(token), 0.0)) == [token] * 3
    assert texts(stage.push(msg(other), 0.0)) == [other]


def test_zero_copies_changes_nothing() -> None:
    assert texts(stage_of(Duplicate(copies=0)).push(msg("a"), 0.0)) == ["a"]


def test_close_actions_are_not_duplicated() -> None:
    close = Close(1000)
    assert stage_of(Duplicate(copies=3)).push(close, 0.0) == [close]
