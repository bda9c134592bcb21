"""``chaos-service llm-stub``: an OpenAI-compatible chat completions server with scripted replies.

Replies are deterministic and scripted by the request (see docs/llm-stub.md), so a test
knows the exact stream it should receive.
"""

from __future__ import annotations

import argparse
import sys

from chaos_service.errors import ChaosServiceError


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("llm-stub", help="run the OpenAI-compatible LLM stub", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    parser.add_argument(
        "--model", action="append", dest="models", metavar="NAME", help="a model to serve (repeatable)"
    )
    parser.add_argument("--api-key", help="require this bearer token (default: any)")
    parser.add_argument("--pace-ms", type=float, default=0.0, help="default delay between streamed tokens")
    parser.add_argument("--first-token-ms", type=float, default=0.0, help="default delay before the first token")
    parser.add_argument("--log-level", help="debug, info, warning or error")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from chaos_service.runtime import run_async
    from chaos_service.sandbox.llm_stub.app import DEFAULT_MODELS, StubSettings, create_app
    from chaos_service.serving import bind_tcp, configure_logging, serve_asgi

    if not 0 <= args.port <= 65535:
        print(f"chaos-service llm-stub: invalid port {args.port} (0-65535)", file=sys.stderr)
        return 2
    if args.pace_ms < 0 or args.first_token_ms < 0:
        print("chaos-service llm-stub: --pace-ms and --first-token-ms must be >= 0", file=sys.stderr)
        return 2
    configure_logging(args.log_level)
    models = tuple(args.models) if args.models else DEFAULT_MODELS
    settings = StubSettings(
        models=models, api_key=args.api_key, pace_ms=args.pace_ms, first_token_ms=args.first_token_ms
    )
    try:
        sock = bind_tcp(args.host, args.port)
    except ChaosServiceError as exc:
        print(f"chaos-service llm-stub: {exc}", file=sys.stderr)
        return 2

    def ready(url: str) -> None:
        message = f"chaos-service llm-stub: serving on {url} (OpenAI-compatible; models: {', '.join(models)})"
        print(message, flush=True)

    try:
        run_async(serve_asgi(create_app(settings), sock, ready))
    finally:
        sock.close()
    return 0
