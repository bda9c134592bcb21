"""Secret masking in free text and in structures."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from chaos_service.experiments.outputs.masking import MASK, Masker, is_secret_key


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql://user:pw-123@db:5432/x", "postgresql://user:***@db:5432/x"),
        ("redis://:hunter2@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("http://127.0.0.1:8474/proxies", "http://127.0.0.1:8474/proxies"),
        ("ws://h/ws?user=a&token=abc.def&x=1", "ws://h/ws?user=a&token=***&x=1"),
        ("GET /v1?api_key=k1&access_token=t2", "GET /v1?api_key=***&access_token=***"),
        ("host=db password=hunter2 user=x", "host=db password=*** user=x"),
        ('{"password": "hunter2"}', '{"password": "***"}'),
        ("Authorization: Bearer abc.def.ghi", "Authorization: Bearer ***"),
        ("sent Bearer eyJhbGciOi.x.y upstream", "sent Bearer *** upstream"),
        ("max_tokens: 256, tokens: 12", "max_tokens: 256, tokens: 12"),
        ("chat: success_rate >= 0.99", "chat: success_rate >= 0.99"),
        ("stream cut after 5 tokens", "stream cut after 5 tokens"),
        ("X-Api-Key: k-99 DB_PASSWORD=pw1 credentials: c1", "X-Api-Key: *** DB_PASSWORD=*** credentials: ***"),
        ("slow-first-token-downstream: fired 81", "slow-first-token-downstream: fired 81"),
    ],
)
def test_text(text: str, masked: str) -> None:
    assert Masker().text(text) == masked


def test_known_secrets_are_masked_wherever_they_appear() -> None:
    masker = Masker.collecting({"auth": {"secret": "Zx9-secret-value"}, "db": "postgresql://u:pg-Pass-1@h/d"})
    assert masker.text("rejected Zx9-secret-value and pg-Pass-1 again") == "rejected *** and *** again"
    # ordinary words used as dev passwords are not masked in prose, only where they are secrets
    plain = Masker.collecting({"db": "postgresql://postgres:postgres@h/d", "password": "postgres"})
    assert plain.text("Postgres partition on postgres") == "Postgres partition on postgres"


def test_structures_are_walked_and_made_json_ready() -> None:
    @dataclass
    class Creds:
        user: str
        password: str

    masked = Masker().value(
        {
            "auth": "user:pw",
            "tokens": {"viewer": "v-token", "admin": "a-token"},
            "llm": {"api-key": "sk-1", "max_tokens": 64, "token_count": 5},
            "creds": Creds("u", "p"),
            "urls": ("postgresql://u:pw@h/d",),
            "ratio": float("inf"),
            "flags": {True, False},
        }
    )
    assert masked == {
        "auth": MASK,
        "tokens": {"viewer": MASK, "admin": MASK},
        "llm": {"api-key": MASK, "max_tokens": 64, "token_count": 5},
        "creds": {"user": "u", "password": MASK},
        "urls": ["postgresql://u:***@h/d"],
        "ratio": None,
        "flags": [False, True],
    }


@pytest.mark.parametrize(
    "key", ["secret", "AUTH_TOKEN", "db_password", "api_key", "X-Api-Key", "Authorization", "tokens", "passwd"]
)
def test_secret_keys(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["name", "url", "auth", "roles", "success_rate", "first-token-latency", "token_count"])
def test_ordinary_keys(key: str) -> None:
    assert not is_secret_key(key)
