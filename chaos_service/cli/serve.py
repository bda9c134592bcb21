"""``chaos-service serve``: the control plane — REST API, live run events, game days, halt.

Binds 127.0.0.1 by default. Experiments run against ``--environment`` (an environment.json,
e.g. from ``chaos-service sandbox up``); without it, a private sandbox is started for the
life of the server. The store is ``--store`` (a file, ``sqlite:///…`` or ``postgresql://…``),
else $CHAOS_STORE, else ``.chaos/control.db``; give several replicas one Postgres store.
Every route but /health needs a token from ``chaos-service token create``.
Exit codes: 0 stopped by SIGINT/SIGTERM, 2 bad input.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from chaos_service.errors import ChaosServiceError


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from chaos_service.cli.token import DEFAULT_STORE, STORE_VARIABLE

    parser = commands.add_parser("serve", help="run the control plane (REST API, game days, halt)", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (default 8000; 0 picks a free one)")
    parser.add_argument("--store", help=f"the store (default ${STORE_VARIABLE}, else {DEFAULT_STORE})")
    parser.add_argument(
        "--environment", type=Path, help="environment.json to run experiments against (default: a private sandbox)"
    )
    parser.add_argument(
        "--replica",
        help="this replica's name in the store; keep it across restarts, so that a restarted replica finds "
        "the runs it left (default HOST-PORT)",
    )
    parser.add_argument("--max-runs", type=int, default=4, help="runs this replica runs at once (default 4)")
    parser.add_argument(
        "--load", type=Path, action="append", default=[], metavar="PATH",
        help="store the experiment files here that the store lacks (repeatable)",
    )  # fmt: skip
    parser.add_argument("--log-level", default="info", help="debug, info, warning or error (default info)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from chaos_service.cli.token import store_location
    from chaos_service.control.server import ServeOptions, serve
    from chaos_service.runtime import run_async
    from chaos_service.serving import bind_tcp, configure_logging

    if not 1 <= args.max_runs <= 64:
        return _bad(f"--max-runs must be between 1 and 64, got {args.max_runs}")
    if not 0 <= args.port <= 65535:
        return _bad(f"--port must be between 0 and 65535, got {args.port}")
    if args.environment is not None and not args.environment.is_file():
        return _bad(f"--environment {args.environment}: no such file")
    configure_logging(args.log_level)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # a line per firing otherwise
    try:
        sock = bind_tcp(args.host, args.port)
    except ChaosServiceError as exc:
        return _bad(str(exc))
    try:
        with _environment(args.environment) as environment_path:
            options = ServeOptions(
                store=store_location(args.store),
                environment_path=environment_path,
                replica=args.replica or f"{socket.gethostname()}-{sock.getsockname()[1]}",
                max_runs=args.max_runs,
                load=tuple(args.load),
            )
            return run_async(serve(options, sock))
    except ChaosServiceError as exc:
        return _bad(str(exc))
    finally:
        sock.close()


@contextlib.contextmanager
def _environment(given: Path | None) -> Iterator[Path]:
    if given is not None:
        yield given.resolve()
        return
    from chaos_service.sandbox.stack import Sandbox

    with tempfile.TemporaryDirectory(prefix="chaos-serve-") as directory, Sandbox(Path(directory), ports="auto") as box:
        print(f"chaos-service serve: started a private sandbox in {directory}", file=sys.stderr, flush=True)
        yield box.environment_path


def _bad(message: str) -> int:
    print(f"chaos-service serve: {message}", file=sys.stderr)
    return 2
