"""``chaos-service run``: run experiment files against an environment, for people and for CI.

Exit codes: 0 passed, 1 failed, 2 invalid input, 3 aborted, 4 precondition_failed, 5 error;
with several files, the most severe outcome decides. SIGINT and SIGTERM stop the run at
once: the faults are removed and the verdict is ``aborted``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from chaos_service.cli.views import summary_table
from chaos_service.errors import InvalidInput

if TYPE_CHECKING:
    from chaos_service.experiments.plan import ExperimentPlan
    from chaos_service.experiments.record import RunRecord
    from chaos_service.sandbox.environment import Environment

#: The outcome that decides the exit code of several runs, most severe first.
SEVERITY = ("error", "aborted", "precondition_failed", "failed", "passed")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("run", help="run experiment files", description=__doc__)
    parser.add_argument("files", nargs="+", metavar="FILE", help="experiment files or directories")
    parser.add_argument("--env", type=Path, help="environment file (default: .chaos/sandbox/environment.json)")
    parser.add_argument("--journal", type=Path, help="write the JSON journal here")
    parser.add_argument("--junit", type=Path, help="write a JUnit XML file here")
    parser.add_argument("--html", type=Path, help="write the HTML report here")
    parser.add_argument("--dry-run", action="store_true", help="resolve targets and run the probes; inject nothing")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from chaos_service.cli.validate import load_all, load_environment
    from chaos_service.experiments.loader import InvalidExperiment
    from chaos_service.experiments.plan import ExperimentPlan

    try:
        environment = load_environment(args.env)
        if environment is None:
            raise InvalidInput("no environment: run `chaos-service sandbox up`, or pass --env FILE")
        loaded = load_all(args.files, environment)
    except InvalidInput as exc:
        print(f"chaos-service run: {exc}", file=sys.stderr)
        return 2
    invalid = [error for _, error in loaded if isinstance(error, InvalidExperiment)]
    if invalid:
        for error in invalid:
            print(str(error), file=sys.stderr)
        print("chaos-service run: nothing was run", file=sys.stderr)
        return 2
    plans = [plan for _, plan in loaded if isinstance(plan, ExperimentPlan)]
    from chaos_service.runtime import run_async

    records = run_async(_run_all(plans, environment, args.dry_run, sys.stdout))
    _write_outputs(records, args)
    summary_table(records, sys.stdout)
    return exit_code(records)


def exit_code(records: Sequence[RunRecord]) -> int:
    """The exit code of the most severe outcome (0 when nothing ran)."""
    from chaos_service.experiments.record import RunOutcome

    worst = min((SEVERITY.index(record.outcome.value) for record in records), default=len(SEVERITY) - 1)
    return RunOutcome(SEVERITY[worst]).exit_code


async def _run_all(
    plans: list[ExperimentPlan], environment: Environment, dry_run: bool, out: TextIO
) -> list[RunRecord]:
    from chaos_service.cli.views import view_for
    from chaos_service.experiments.suite import SuiteRunner

    view = view_for(out, len(plans))
    async with view.showing():
        return await SuiteRunner(plans, [environment], view, dry_run=dry_run).run()


def _write_outputs(records: list[RunRecord], args: argparse.Namespace) -> None:
    from chaos_service.experiments.outputs import write_html, write_html_suite, write_journal, write_junit

    if args.journal is not None and records:
        if len(records) == 1:
            write_journal(records[0], args.journal)
        else:
            for record in records:
                write_journal(record, args.journal.with_name(f"{args.journal.stem}-{Path(record.path).stem}.json"))
    if args.junit is not None:
        write_junit(records, args.junit)
    if args.html is not None and records:
        if len(records) == 1:
            write_html(records[0], args.html)
        else:
            write_html_suite(records, args.html)

