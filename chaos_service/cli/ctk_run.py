"""Chaos Toolkit files in ``chaos-service run``: recognised, validated, run, journaled."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from chaos_service.ctk.document import CtkExperiment
    from chaos_service.ctk.runner import CtkResult, CtkRunner
    from chaos_service.experiments.record import RunRecord

#: Where ``chaostoxi`` calls go when there is no environment (Toxiproxy's own default).
DEFAULT_ENGINE = "http://127.0.0.1:8474"


def add_options(parser: argparse.ArgumentParser) -> None:
    from chaos_service.ctk import HYPOTHESIS_STRATEGIES, ROLLBACK_STRATEGIES

    group = parser.add_argument_group("Chaos Toolkit experiment files")
    group.add_argument(
        "--ctk-compat",
        action="store_true",
        help="Chaos Toolkit's own status and exit code (0 when completed and not deviated, else 1) "
        "and its default rollback strategy",
    )
    group.add_argument("--hypothesis-strategy", choices=HYPOTHESIS_STRATEGIES, help="overrides the file's runtime")
    group.add_argument("--rollback-strategy", choices=ROLLBACK_STRATEGIES, help="overrides the file's runtime")
    group.add_argument(
        "--hypothesis-frequency", type=float, default=1.0, help="seconds between steady-state checks during the method"
    )


def split(files: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """(Chaos Toolkit files, the others); a file that does not parse is left to the others' loader."""
    from chaos_service.ctk.document import looks_like_ctk, read_document
    from chaos_service.errors import InvalidInput

    ctk: list[Path] = []
    ours: list[Path] = []
    for file in files:
        try:
            document = read_document(file)
        except InvalidInput:
            document = None
        (ctk if looks_like_ctk(document) else ours).append(file)
    return ctk, ours


def load(files: Sequence[Path]) -> list[CtkExperiment]:
    """Every file validated; `InvalidInput` listing every file's problems when one is not runnable."""
    from chaos_service.ctk.configuration import load_configuration, load_secrets
    from chaos_service.ctk.document import InvalidCtkExperiment, load_ctk_experiment
    from chaos_service.errors import InvalidInput

    experiments: list[CtkExperiment] = []
    problems: list[str] = []
    for file in files:
        try:
            experiment = load_ctk_experiment(file)
            load_configuration(experiment.configuration, os.environ)  # a variable missing now would stop
            load_secrets(experiment.secrets, os.environ)  # the run half-way: refuse it before anything runs
            experiments.append(experiment)
        except InvalidCtkExperiment as exc:
            problems.append(str(exc))
        except InvalidInput as exc:
            problems.append(f"{file}: {exc}")
    if problems:
        raise InvalidInput("\n".join(problems))
    return experiments


def run_all(
    experiments: Sequence[CtkExperiment], engine_url: str | None, args: argparse.Namespace, out: TextIO
) -> list[tuple[CtkExperiment, CtkResult]]:
    if not experiments:
        return []
    from chaos_service.ctk.runner import CtkRunner

    results = []
    for experiment in experiments:
        print(f"{experiment.path}: {experiment.title} (Chaos Toolkit)", file=out, flush=True)
        runner = CtkRunner(
            experiment,
            engine_url or DEFAULT_ENGINE,
            ctk_compat=args.ctk_compat,
            dry_run=args.dry_run,
            hypothesis_strategy=args.hypothesis_strategy,
            rollback_strategy=args.rollback_strategy,
            hypothesis_frequency=args.hypothesis_frequency,
            notify=lambda message: print(f"  {message}", file=out, flush=True),
        )
        with _interrupting(runner):
            result = runner.run()
        for line in result.restored:
            print(f"  restored: {line}", file=out, flush=True)
        shown = f"status {result.status}" + (", deviated" if result.deviated else "")
        print(f"  {shown}; verdict {result.outcome.value}: {result.reason}", file=out, flush=True)
        results.append((experiment, result))
    return results


def records(results: Sequence[tuple[CtkExperiment, CtkResult]]) -> list[RunRecord]:
    """The runs as records, for the summary, JUnit and HTML reports."""
    if not results:
        return []
    from chaos_service.ctk.record import run_record

    return [run_record(experiment, result) for experiment, result in results]


def write_journals(results: Sequence[tuple[CtkExperiment, CtkResult]], path: Path, several: bool) -> None:
    """Chaos Toolkit-format journals: at ``path``, or beside it per experiment when there are several."""
    for experiment, result in results:
        target = path.with_name(f"{path.stem}-{Path(experiment.path).stem}.json") if several else path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(result.journal, indent=2, default=str) + "\n")


def exit_code(results: Sequence[tuple[CtkExperiment, CtkResult]], ctk_compat: bool) -> int | None:
    """With ``--ctk-compat``, Chaos Toolkit's exit code for these runs (None: none ran)."""
    if not ctk_compat or not results:
        return None
    return max(result.ctk_exit_code for _, result in results)


@contextmanager
def _interrupting(runner: CtkRunner) -> Iterator[None]:
    """SIGINT and SIGTERM interrupt the run (its rollbacks and restore still happen)."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        runner.interrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sys.stdout.flush()
