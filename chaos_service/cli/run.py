"""``chaos-service run``: run experiment files against an environment, for people and for CI.

Exit codes: 0 passed, 1 failed, 2 invalid input, 3 aborted, 4 precondition_failed, 5 error;
with several files, the most severe outcome decides. SIGINT and SIGTERM stop the run at
once: the faults are removed and the verdict is ``aborted``.

Chaos Toolkit experiment files (JSON or YAML) run too, with the same verdicts and exit codes;
``--journal`` then writes a Chaos Toolkit journal, and ``--ctk-compat`` gives Chaos Toolkit's
own status and exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from chaos_service.cli import ctk_run
from chaos_service.errors import InvalidInput

if TYPE_CHECKING:
    from chaos_service.ctk.document import CtkExperiment
    from chaos_service.ctk.runner import CtkResult
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
    ctk_run.add_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from chaos_service.cli.validate import load_environment
    from chaos_service.cli.views import summary_table
    from chaos_service.experiments.loader import InvalidExperiment, discover, load_experiment

    try:
        environment = load_environment(args.env)
        ctk_files, files = ctk_run.split(discover(args.files))
        if not ctk_files and not files:
            raise InvalidInput(f"no experiment files (*.yaml, *.yml) in {', '.join(map(str, args.files))}")
        if files and environment is None:
            raise InvalidInput("no environment: run `chaos-service sandbox up`, or pass --env FILE")
        ctk_experiments = ctk_run.load(ctk_files)
        loaded: list[ExperimentPlan | InvalidExperiment] = []
        for file in files:
            try:
                loaded.append(load_experiment(file, environment))
            except InvalidExperiment as exc:
                loaded.append(exc)
    except InvalidInput as exc:
        print(f"chaos-service run: {exc}", file=sys.stderr)
        return 2
    invalid = [error for error in loaded if isinstance(error, InvalidExperiment)]
    if invalid:
        for error in invalid:
            print(str(error), file=sys.stderr)
        print("chaos-service run: nothing was run", file=sys.stderr)
        return 2
    plans = [plan for plan in loaded if not isinstance(plan, InvalidExperiment)]
    records: list[RunRecord] = []
    if plans:
        assert environment is not None
        from chaos_service.runtime import run_async

        records = run_async(_run_all(plans, environment, args.dry_run, sys.stdout))
    ctk_results = ctk_run.run_all(ctk_experiments, environment.engine if environment else None, args, sys.stdout)
    ctk_records = ctk_run.records(ctk_results)
    _write_outputs(records, ctk_records, ctk_results, args)
    summary_table([*records, *ctk_records], sys.stdout)
    ctk_code = ctk_run.exit_code(ctk_results, args.ctk_compat)
    if ctk_code is None:
        return exit_code([*records, *ctk_records])
    return max(exit_code(records) if records else 0, ctk_code)


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


def _write_outputs(
    records: list[RunRecord],
    ctk_records: list[RunRecord],
    ctk_results: list[tuple[CtkExperiment, CtkResult]],
    args: argparse.Namespace,
) -> None:
    from chaos_service.experiments.outputs import write_html, write_html_suite, write_journal, write_junit

    several = len(records) + len(ctk_records) > 1
    if args.journal is not None:
        for record in records:
            beside = args.journal.with_name(f"{args.journal.stem}-{Path(record.path).stem}.json")
            write_journal(record, beside if several else args.journal)
        ctk_run.write_journals(ctk_results, args.journal, several)
    every = [*records, *ctk_records]
    if args.junit is not None:
        write_junit(every, args.junit)
    if args.html is not None and every:
        if len(every) == 1:
            write_html(every[0], args.html)
        else:
            write_html_suite(every, args.html)
