"""``chaos-service sandbox-chat``: the sandbox's chat back-end (usually started by ``sandbox up``).

It reaches Postgres, Redis and the LLM at the URLs given, which the sandbox points at the
engine's proxies. See docs/sandbox.md.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

from chaos_service.errors import ChaosServiceError
from chaos_service.sandbox.chat.config import DEFECTS, ChatSettings, unknown_defects

SECRET_VARIABLE = "CHAOS_SANDBOX_JWT_SECRET"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("sandbox-chat", help="run the sandbox's chat back-end", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    parser.add_argument("--postgres-url", required=True, help="postgresql://… (through the postgres proxy)")
    parser.add_argument("--redis-url", required=True, help="redis://… (through the redis proxy)")
    parser.add_argument("--llm-url", required=True, help="OpenAI-compatible base URL, e.g. http://127.0.0.1:28080/v1")
    parser.add_argument(
        "--jwt-secret", help=f"HS256 key for client tokens (default: ${SECRET_VARIABLE}, which keeps it out of ps)"
    )
    parser.add_argument(
        "--defect", action="append", default=[], metavar="NAME", help=f"switch on a seeded defect: {', '.join(DEFECTS)}"
    )
    parser.add_argument("--run-deadline", type=float, default=30.0, help="seconds a run may take (default 30)")
    parser.add_argument("--log-level", help="debug, info, warning or error")
    parser.set_defaults(handler=run)


def settings_from(args: argparse.Namespace) -> ChatSettings | str:
    """The settings, or a message saying what is wrong with the arguments."""
    if not 0 <= args.port <= 65535:
        return f"invalid port {args.port} (0-65535)"
    if unknown := unknown_defects(args.defect):
        return f"unknown defect {', '.join(unknown)}; known: {', '.join(DEFECTS)}"
    if not args.run_deadline > 0:
        return "--run-deadline must be > 0"
    secret = args.jwt_secret or os.environ.get(SECRET_VARIABLE)
    if not secret:
        return f"no JWT secret: pass --jwt-secret or set {SECRET_VARIABLE}"
    for flag, url, schemes in (
        ("--postgres-url", args.postgres_url, ("postgresql://", "postgres://")),
        ("--redis-url", args.redis_url, ("redis://",)),
        ("--llm-url", args.llm_url, ("http://", "https://")),
    ):
        if not url.startswith(schemes):
            return f"{flag} must start with {' or '.join(schemes)}: {url!r}"
    return ChatSettings(
        postgres_url=args.postgres_url,
        redis_url=args.redis_url,
        llm_url=args.llm_url.rstrip("/"),
        jwt_secret=secret,
        defects=frozenset(args.defect),
        run_deadline=args.run_deadline,
    )


def run(args: argparse.Namespace) -> int:
    from chaos_service.runtime import run_async
    from chaos_service.serving import bind_tcp, configure_logging

    settings = settings_from(args)
    if isinstance(settings, str):
        print(f"chaos-service sandbox-chat: {settings}", file=sys.stderr)
        return 2
    configure_logging(args.log_level)
    try:
        sock = bind_tcp(args.host, args.port)
    except ChaosServiceError as exc:
        print(f"chaos-service sandbox-chat: {exc}", file=sys.stderr)
        return 2
    try:
        return run_async(_serve(settings, sock))
    finally:
        sock.close()


async def _serve(settings: ChatSettings, sock: socket.socket) -> int:
    from chaos_service.sandbox.chat.app import create_app
    from chaos_service.sandbox.chat.service import ChatService
    from chaos_service.sandbox.chat.store import StoreUnavailable
    from chaos_service.serving import serve_asgi

    service = ChatService(settings)

    def ready(url: str) -> None:
        defects = ", ".join(sorted(settings.defects)) or "none"
        print(
            f"chaos-service sandbox-chat: serving on {url} (WebSocket /ws, GET /health; defects: {defects})", flush=True
        )

    try:
        await service.start()
    except StoreUnavailable as exc:
        await service.stop()
        print(f"chaos-service sandbox-chat: {exc}", file=sys.stderr)
        return 1
    try:
        await serve_asgi(create_app(service), sock, ready)
    finally:
        await service.stop()
    return 0
