"""The ``chaos-service`` command line.

Exit codes: 0 success, 2 invalid input (bad flags, files or values).
"""

from __future__ import annotations

import argparse
import sys

from chaos_service import __version__
from chaos_service.cli import demo, engine, llm_stub, run, sandbox, sandbox_chat, serve, token, tour, validate


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chaos-service",
        description="Chaos and fault injection for AI chat back-ends.",
    )
    parser.add_argument("--version", action="version", version=f"chaos-service {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    engine.add_parser(commands)
    llm_stub.add_parser(commands)
    sandbox_chat.add_parser(commands)
    sandbox.add_parser(commands)
    demo.add_parser(commands)
    tour.add_parser(commands)
    token.add_parser(commands)
    serve.add_parser(commands)
    run.add_parser(commands)
    validate.add_validate_parser(commands)
    validate.add_list_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    return int(args.handler(args))
