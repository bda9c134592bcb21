"""How long the command line takes to start, against the bare interpreter.

    .venv/bin/python -m bench.cli --write bench/RESULTS.md

Every process the sandbox starts (the engine, the LLM stub, the chat back-end, run workers)
and every command a user types pays this start-up. Runs alternate (command, baseline, …),
so a drift in the machine's speed shows in both; the medians and their ratio are reported.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.report import write_section

START, END = "<!-- cli-startup:start -->", "<!-- cli-startup:end -->"
RUNS = 20
COMMANDS = {
    "`chaos-service --version`": [sys.executable, "-m", "chaos_service", "--version"],
    "`chaos-service engine --help`": [sys.executable, "-m", "chaos_service", "engine", "--help"],
}
BASELINE = [sys.executable, "-c", "pass"]
HISTORY = (
    "Until the parser stopped importing the demo (and with it the openai client) and the run views, "
    "`chaos-service --version` took 1.43 s against 0.10 s after (median wall of 10 paired runs, both "
    "without site start-up)."
)


def wall(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    return time.perf_counter() - started


def measure() -> str:
    rows = ["| Command | Median wall | Bare interpreter (`python -c pass`) | Ratio |", "|---|---|---|---|"]
    for name, command in COMMANDS.items():
        wall(command)  # warm the file cache
        pairs = [(wall(command), wall(BASELINE)) for _ in range(RUNS)]
        ours, bare = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
        ratio = statistics.median(p[0] / p[1] for p in pairs)
        rows.append(f"| {name} | {ours * 1000:.0f} ms | {bare * 1000:.0f} ms | {ratio:.1f}x |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cli", description=__doc__)
    parser.add_argument("--write", type=Path, metavar="PATH", help="put the section into this Markdown file")
    args = parser.parse_args(argv)
    section = (
        f"{START}\n## Command-line start-up\n\nProduced by `.venv/bin/python -m bench.cli --write bench/RESULTS.md` "
        f"({RUNS} alternating runs of each).\n\n{measure()}\n\n{HISTORY}\n{END}\n"
    )
    print(section)
    if args.write is not None:
        write_section(args.write, START, END, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
