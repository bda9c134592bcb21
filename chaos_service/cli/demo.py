"""``chaos-service demo``: see the engine's faults from a real client's side."""

from __future__ import annotations

import argparse
import sys

from chaos_service.errors import ChaosServiceError


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("demo", help="run the demo (private Redis behind the engine)", description=__doc__)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from chaos_service.demo import run_demo

    try:
        return run_demo(sys.stdout)
    except ChaosServiceError as exc:
        print(f"chaos-service demo: {exc}", file=sys.stderr)
        return 1
