"""The demo's main part: sandboxes up, the built-in experiments against them, a report, sandboxes down.

The experiments share nothing but the machine, so they run on ``lanes`` sandboxes side by
side (each sandbox runs one experiment at a time: faults on a shared proxy would mix).
Everything is checked before anything starts: a bad file or an unknown defect is exit 2.
"""

from __future__ import annotations

import contextlib
import signal
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, TextIO

from chaos_service.demo import DEFAULT_LANES, MAX_LANES
from chaos_service.errors import InvalidInput
from chaos_service.experiments.loader import InvalidExperiment, load_experiment
from chaos_service.experiments.plan import ExperimentPlan
from chaos_service.experiments.record import RunRecord
from chaos_service.sandbox.environment import Environment
from chaos_service.sandbox.stack import Sandbox

#: The experiment library shipped with the project.
BUILT_IN = Path(__file__).resolve().parents[2] / "experiments"


def default_report_dir() -> Path:
    return Path("reports") / time.strftime("demo-%Y%m%d-%H%M%S")


def run_suite_demo(
    out: TextIO,
    err: TextIO,
    *,
    files: Sequence[Path] = (),
    lanes: int = DEFAULT_LANES,
    defects: Sequence[str] = (),
    report_dir: Path | None = None,
) -> int:
    """Runs the demo; returns its exit code (that of the most severe outcome, or 2)."""

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    try:
        paths = _checked(files, lanes, defects)
    except InvalidInput as exc:
        print(f"chaos-service demo: {exc}", file=err)
        return 2
    report_dir = report_dir or default_report_dir()
    report_dir.mkdir(parents=True, exist_ok=True)
    flaws = f" with defect {', '.join(defects)}" if defects else ""
    say(f"chaos-service demo: {len(paths)} experiments on {lanes} sandbox{'es' if lanes > 1 else ''}{flaws}")
    with (
        tempfile.TemporaryDirectory(prefix="chaos-demo-") as scratch,
        (report_dir / "servers.log").open("w") as log_to,
        contextlib.ExitStack() as running,
    ):
        started = time.monotonic()
        environments = _start(lanes, Path(scratch), list(defects), log_to, running)
        say(f"sandboxes up in {time.monotonic() - started:.1f} s (servers' output: {report_dir / 'servers.log'})\n")
        try:
            plans = [load_experiment(path, environments[0]) for path in paths]
        except InvalidExperiment as exc:
            print(str(exc), file=err)
            return 2
        records = _run(plans, environments, out)
        say("\nstopping the sandboxes")
    written = _write_reports(records, report_dir)
    from chaos_service.cli.run import exit_code
    from chaos_service.cli.views import summary_table

    summary_table(records, out)
    say(f"\nreport: {written}")
    say("every fault removed, every sandbox stopped.")
    return exit_code(records)


def _checked(files: Sequence[Path], lanes: int, defects: Sequence[str]) -> list[Path]:
    """The experiment files to run, each valid on its own; raises `InvalidInput` for anything wrong."""
    from chaos_service.cli.validate import load_all

    if not 1 <= lanes <= MAX_LANES:
        raise InvalidInput(f"--lanes must be between 1 and {MAX_LANES}, got {lanes}")
    Sandbox(Path("."), defects=defects).check()
    if not files:
        if not BUILT_IN.is_dir():
            raise InvalidInput(f"the built-in experiments are not at {BUILT_IN}: pass experiment files")
        files = [BUILT_IN]
    loaded = load_all(files, None)
    problems = [str(error) for _, error in loaded if isinstance(error, InvalidExperiment)]
    if problems:
        raise InvalidInput("\n".join(problems))
    return [path for path, _ in loaded]


def _start(
    lanes: int, scratch: Path, defects: list[str], log_to: IO[str], running: contextlib.ExitStack
) -> list[Environment]:
    """``lanes`` sandboxes started side by side; each is stopped when ``running`` closes."""
    sandboxes = [
        Sandbox(scratch / f"sandbox-{lane}", ports="auto", defects=defects, log_to=log_to)
        for lane in range(1, lanes + 1)
    ]
    for sandbox in sandboxes:
        running.callback(sandbox.stop)
    with ThreadPoolExecutor(lanes) as pool:
        starting = [pool.submit(sandbox.start) for sandbox in sandboxes]
    for future in starting:
        future.result()  # the first failure; every sandbox is stopped on the way out
    return [sandbox.environment for sandbox in sandboxes]


def _run(plans: list[ExperimentPlan], environments: list[Environment], out: TextIO) -> list[RunRecord]:
    from chaos_service.cli.views import view_for
    from chaos_service.experiments.suite import SuiteRunner
    from chaos_service.runtime import run_async

    def replan(plan: ExperimentPlan, environment: Environment) -> ExperimentPlan:
        return plan if environment is environments[0] else load_experiment(plan.path, environment)

    async def run_all() -> list[RunRecord]:
        view = view_for(out, len(plans), len(environments))
        async with view.showing():
            return await SuiteRunner(plans, environments, view, replan=replan).run()

    outside = signal.getsignal(signal.SIGTERM)
    try:
        return run_async(run_all())
    finally:
        signal.signal(signal.SIGTERM, outside)  # the suite's own handling ended with it


def _write_reports(records: list[RunRecord], report_dir: Path) -> Path:
    """The suite's HTML report, its JUnit file and a journal per run; returns the report's path."""
    from chaos_service.experiments.outputs import write_html_suite, write_journal, write_junit

    for record in records:
        write_journal(record, report_dir / "journals" / f"{Path(record.path).stem}.json")
    write_junit(records, report_dir / "junit.xml")
    return write_html_suite(records, report_dir / "report.html", title="chaos-service demo: the built-in experiments")
