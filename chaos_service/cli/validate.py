"""``chaos-service validate`` and ``chaos-service list``: check and show experiment files.

``validate FILE_OR_DIR... [--env FILE]`` prints ``ok  PATH  TITLE`` for each valid file and
every problem of the others (``FILE:LINE: FIELD: MESSAGE``); exit 0 when all are valid,
2 otherwise. ``list [DIR] [--env FILE]`` shows a table of the experiments in DIR
(default ``experiments``); exit 2 if any file is invalid.

With an environment (``--env``, or ``.chaos/sandbox/environment.json`` when a sandbox
runs here) endpoints, proxies, processes and ``${env.…}`` variables are checked too.
The file format is described in docs/experiments.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from chaos_service.errors import ChaosServiceError, InvalidInput

if TYPE_CHECKING:
    from chaos_service.experiments.loader import InvalidExperiment
    from chaos_service.experiments.plan import ExperimentPlan
    from chaos_service.sandbox.environment import Environment

#: The environment file of a sandbox started in the current directory with the default ``--dir``.
DEFAULT_ENVIRONMENT = Path(".chaos/sandbox/environment.json")
DEFAULT_DIRECTORY = "experiments"


def add_validate_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "validate",
        help="check experiment files and report every problem",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", metavar="FILE_OR_DIR", help="experiment files, or directories of them")
    _add_env(parser)
    parser.set_defaults(handler=run_validate)


def add_list_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "list",
        help="show the experiments in a directory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("directory", nargs="?", default=DEFAULT_DIRECTORY, metavar="DIR", help="default: experiments")
    _add_env(parser)
    parser.set_defaults(handler=run_list)


def _add_env(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env",
        type=Path,
        metavar="FILE",
        help=f"environment file to resolve names against (default: {DEFAULT_ENVIRONMENT} if it exists)",
    )


def run_validate(args: argparse.Namespace) -> int:
    from chaos_service.cli import ctk_run
    from chaos_service.ctk.document import InvalidCtkExperiment, load_ctk_experiment
    from chaos_service.experiments.loader import discover

    try:
        environment = load_environment(args.env)
        ctk_files, files = ctk_run.split(discover(args.paths))
        # With nothing to validate at all, load_all says so about the paths as given.
        results = load_all(files or args.paths, environment) if files or not ctk_files else []
    except ChaosServiceError as exc:
        print(f"chaos-service validate: {exc}", file=sys.stderr)
        return 2
    ctk_results: list[tuple[Path, object]] = []
    for file in ctk_files:
        try:
            ctk_results.append((file, load_ctk_experiment(file)))
        except InvalidCtkExperiment as exc:
            ctk_results.append((file, exc))
    if environment is None and results:
        print(
            "chaos-service validate: no environment (--env FILE, or a sandbox running here): endpoints, "
            "proxies, processes and ${env.…} variables were not checked",
            file=sys.stderr,
        )
    invalid = 0
    for path, result in [*results, *ctk_results]:
        if isinstance(result, InvalidInput):
            invalid += 1
            print(result, file=sys.stderr)
        else:
            kind = " (Chaos Toolkit)" if (path, result) in ctk_results else ""
            print(f"ok  {path}  {getattr(result, 'title', '')}{kind}")
    if invalid:
        total = len(results) + len(ctk_results)
        print(f"chaos-service validate: {invalid} of {total} files are invalid", file=sys.stderr)
        return 2
    return 0


def run_list(args: argparse.Namespace) -> int:
    try:
        environment = load_environment(args.env)
        results = load_all([args.directory], environment, allow_empty=True)
    except ChaosServiceError as exc:
        print(f"chaos-service list: {exc}", file=sys.stderr)
        return 2
    if not results:
        print(f"chaos-service list: no experiment files (*.yaml, *.yml) in {args.directory}", file=sys.stderr)
        return 0
    plans = [(path, result) for path, result in results if not isinstance(result, InvalidInput)]
    rows = [["FILE", "TITLE", "TAGS", "FAULTS", "CATCHES"]]
    for path, plan in plans:
        faults = ", ".join(f"{fault.fault}({fault.target})" for fault in plan.method)
        rows.append([str(path), plan.title, ",".join(plan.tags) or "-", faults or "-", plan.catches or "-"])
    if plans:
        widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
        for row in rows:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    bad = [(path, result) for path, result in results if isinstance(result, InvalidInput)]
    for path, error in bad:
        count = len(getattr(error, "problems", [])) or 1
        print(
            f"chaos-service list: {path} is invalid ({count} problem{'s' if count > 1 else ''}): "
            f"run `chaos-service validate {path}`",
            file=sys.stderr,
        )
    return 2 if bad else 0


def load_environment(path: Path | None) -> Environment | None:
    """The environment from ``path``, else the sandbox's in the current directory, else None.

    Raises:
        InvalidInput: ``path`` does not exist or is not an environment file.
    """
    from chaos_service.sandbox.environment import Environment

    if path is not None:
        if not path.is_file():
            raise InvalidInput(f"--env {path}: no such file")
        return Environment.load(path)
    if DEFAULT_ENVIRONMENT.is_file():
        return Environment.load(DEFAULT_ENVIRONMENT)
    return None


def load_all(
    paths: Sequence[str | Path], environment: Environment | None, *, allow_empty: bool = False
) -> list[tuple[Path, ExperimentPlan | InvalidExperiment]]:
    """Every experiment file under ``paths`` with its plan or its problems.

    Raises:
        InvalidInput: a path does not exist, or there is no experiment file at all (unless ``allow_empty``).
    """
    from chaos_service.experiments.loader import InvalidExperiment, discover, load_experiment

    files = discover(paths)
    if not files and not allow_empty:
        raise InvalidInput(f"no experiment files (*.yaml, *.yml) in {', '.join(map(str, paths))}")
    results: list[tuple[Path, ExperimentPlan | InvalidExperiment]] = []
    for file in files:
        try:
            results.append((file, load_experiment(file, environment)))
        except InvalidExperiment as exc:
            results.append((file, exc))
    return results
