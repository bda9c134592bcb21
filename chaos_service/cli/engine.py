"""``chaos-service engine``: the fault proxy engine, a drop-in for ``toxiproxy-server``.

Flags mirror toxiproxy-server's and take its single-dash spelling too
(``-host 0.0.0.0 -port 8474 -config proxies.json``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chaos_service import TOXIPROXY_API_VERSION, __version__
from chaos_service.errors import ChaosServiceError


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "engine",
        help="run the Toxiproxy-compatible fault proxy engine",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", "-host", default="127.0.0.1", help="API host (default 127.0.0.1)")
    parser.add_argument("--port", "-port", type=int, default=8474, help="API port; 0 picks a free one")
    parser.add_argument(
        "--config", "-config", type=Path, help="JSON file of proxies to create at start-up (/populate format)"
    )
    parser.add_argument(
        "--seed", "-seed", type=int, help="seed for toxicity, jitter and slicing draws (reproducible runs)"
    )
    parser.add_argument("--log-level", help="debug, info, warning or error (default: $LOG_LEVEL or info)")
    parser.add_argument(
        "--version",
        "-version",
        action="version",
        version=f"chaos-service engine {__version__} (Toxiproxy API {TOXIPROXY_API_VERSION})",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from chaos_service.engine.server import EngineSettings, run_engine
    from chaos_service.runtime import run_async
    from chaos_service.serving import configure_logging

    if not 0 <= args.port <= 65535:
        print(f"chaos-service engine: invalid port {args.port} (0-65535)", file=sys.stderr)
        return 2
    configure_logging(args.log_level)
    settings = EngineSettings(host=args.host, port=args.port, config=args.config, seed=args.seed)

    def ready(url: str) -> None:
        message = f"chaos-service engine: API on {url} (Toxiproxy {TOXIPROXY_API_VERSION} compatible)"
        print(message, flush=True)

    try:
        run_async(run_engine(settings, ready))
    except ChaosServiceError as exc:
        print(f"chaos-service engine: {exc}", file=sys.stderr)
        return 2
    return 0
