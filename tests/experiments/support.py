"""Shared by the experiment tests."""

from __future__ import annotations

from chaos_service.sandbox.environment import Auth, Environment, Proxy


def sandbox_environment(secret: str = "s3cret") -> Environment:
    """An environment shaped like the sandbox's (nothing needs to run at these addresses)."""
    return Environment(
        engine="http://127.0.0.1:8474",
        proxies={
            "postgres": Proxy("tcp", "127.0.0.1:25432", "127.0.0.1:5432"),
            "redis": Proxy("tcp", "127.0.0.1:26379", "127.0.0.1:6379"),
            "llm": Proxy("http", "127.0.0.1:28080", "127.0.0.1:8081"),
            "chat_ws": Proxy("websocket", "127.0.0.1:28081", "127.0.0.1:8080"),
        },
        endpoints={
            "chat_ws": "ws://127.0.0.1:28081/ws",
            "health": "http://127.0.0.1:8080/health",
            "postgres": "postgresql://chaos@127.0.0.1:25432/chaos",
            "redis": "redis://127.0.0.1:26379/0",
            "llm": "http://127.0.0.1:28080/v1",
        },
        direct={"postgres": "postgresql://chaos@127.0.0.1:5432/chaos", "llm": "http://127.0.0.1:8081/v1"},
        auth=Auth(secret=secret),
        processes={"redis": 101, "postgres": 102, "chat": 103},
    )
