"""``chaos-service tour``: see the engine's faults from a real client's side."""

from __future__ import annotations

import argparse
import sys

from chaos_service.errors import ChaosServiceError


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "tour", help="see each fault from a real client's side (Redis, the LLM, a chat user)", description=__doc__
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from chaos_service.demo.tour import run_tour

    try:
        return run_tour(sys.stdout)
    except ChaosServiceError as exc:
        print(f"chaos-service tour: {exc}", file=sys.stderr)
        return 1
