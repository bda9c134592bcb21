"""ws_drop: only matching messages vanish, with per-message toxicity."""

from __future__ import annotations

from chaos_service.ws_faults import Drop
from chaos_service.ws_faults.message import Close
from tests.ws_faults.relay_support import msg, stage_of, texts

THINKING = '{"type": "agent_thinking"}'
TOKEN = '{"type": "token"}'


def test_drops_only_matching_messages() -> None:
    stage = stage_of(Drop(field="type", value="agent_thinking"))
    assert texts(stage.push(msg(THINKING), 0.0)) == []
    assert texts(stage.push(msg(TOKEN), 0.0)) == [TOKEN]


def test_without_a_field_every_message_is_dropped() -> None:
    assert stage_of(Drop()).push(msg("anything"), 0.0) == []


def test_close_actions_are_never_dropped() -> None:
    close = Close(1000)
    assert stage_of(Drop()).push(close, 0.0) == [close]


def test_toxicity_is_a_seeded_coin_per_message() -> None:
    def survivors(seed: int) -> list[int]:
        stage = stage_of(Drop(), toxicity=0.5, seed=seed)
        return [i for i in range(200) if stage.push(msg(str(i)), 0.0)]

    kept = survivors(7)
    assert 60 < len(kept) < 140
    assert survivors(7) == kept
    assert survivors(8) != kept


def test_toxicity_zero_and_one() -> None:
    assert texts(stage_of(Drop(), toxicity=0.0).push(msg("a"), 0.0)) == ["a"]
    assert stage_of(Drop(), toxicity=1.0).push(msg("a"), 0.0) == []
