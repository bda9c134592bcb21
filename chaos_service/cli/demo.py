"""``chaos-service demo``: the sandbox, the built-in experiments against it with live progress,
the summary table and the report, and the sandbox stopped again.

Exit codes as for ``chaos-service run``: 0 when every experiment passed, 1 when one failed,
2 for bad input, 3 when interrupted; see ``chaos-service run --help``.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType

from chaos_service.errors import ChaosServiceError


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from chaos_service.demo import DEFAULT_LANES, MAX_LANES

    parser = commands.add_parser("demo", help="run the built-in experiments against the sandbox", description=__doc__)
    parser.add_argument(
        "files", nargs="*", type=Path, metavar="FILE", help="experiment files or folders (default: the built-in ones)"
    )
    parser.add_argument(
        "--lanes",
        type=int,
        default=DEFAULT_LANES,
        help=f"sandboxes to run experiments on side by side, 1-{MAX_LANES} (default {DEFAULT_LANES})",
    )
    parser.add_argument(
        "--defect", action="append", default=[], metavar="NAME", help="seed this defect into the sandboxes (repeatable)"
    )
    parser.add_argument("--report-dir", type=Path, help="where the report goes (default: reports/demo-<time>)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from chaos_service.demo.suite import run_suite_demo

    # SIGTERM outside the experiments (while sandboxes start or stop) unwinds like Ctrl-C, so
    # that the sandboxes are stopped; during them, the suite turns it into an aborted run.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return run_suite_demo(
            sys.stdout, sys.stderr, files=args.files, lanes=args.lanes, defects=args.defect, report_dir=args.report_dir
        )
    except ChaosServiceError as exc:
        print(f"chaos-service demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("chaos-service demo: interrupted; the sandboxes are stopped", file=sys.stderr)
        return 3
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
