"""Child processes of the benchmark: the engine, worker processes and external tools.

Every child is registered and `stop_all` (called from the entry point's ``finally`` and at exit)
terminates whatever is still running, so nothing outlives a run, an exception or a Ctrl-C.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import resource
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STOP_TIMEOUT = 5.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

_children: list[subprocess.Popen[bytes]] = []


class BenchError(RuntimeError):
    """A benchmark could not run (a child failed, timed out or printed something unexpected)."""


def raise_open_file_limit() -> None:
    """Raise RLIMIT_NOFILE's soft limit to the hard limit (inherited by children started later)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def spawn(
    argv: list[str],
    *,
    stdin: int | None = subprocess.DEVNULL,
    stdout: Any = subprocess.PIPE,
    stderr: Any = subprocess.PIPE,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start and register a child process (binary pipes)."""
    proc = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr, cwd=ROOT, env=env)
    _children.append(proc)
    return proc


def stop(proc: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM) -> int | None:
    """Signal `proc` (if running), wait for it, SIGKILL it if it does not exit, close its pipes."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    if proc in _children:
        _children.remove(proc)
    return proc.returncode


@atexit.register
def stop_all() -> None:
    """Stop every child still registered."""
    for proc in list(reversed(_children)):
        stop(proc)


def run_tool(argv: list[str], timeout: float, env: dict[str, str] | None = None) -> str:
    """Run an external tool to completion (killed after `timeout` s); its stdout, BenchError on failure."""
    proc = spawn(argv, env=env)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{argv[0]} did not finish within {timeout:.0f}s") from None
    finally:
        stop(proc)
    if proc.returncode != 0:
        raise BenchError(f"{' '.join(argv)} exited with {proc.returncode}: {_tail(err)}")
    return out.decode(errors="replace")


def _tail(data: bytes, lines: int = 8) -> str:
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


# -- workers (python -m bench.workers ROLE, python -m bench.stream_workers ROLE) -------------------

WORKERS = "bench.workers"
STREAM_WORKERS = "bench.stream_workers"


def worker_argv(role: str, *args: object, module: str = WORKERS) -> list[str]:
    return [sys.executable, "-m", module, role, *(str(a) for a in args)]


def read_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    """The next stdout line of `proc` (read unbuffered, so later reads see the rest)."""
    assert proc.stdout is not None
    fd, line, deadline = proc.stdout.fileno(), bytearray(), time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while not line.endswith(b"\n"):
            if not selector.select(max(0.0, deadline - time.monotonic())):
                raise BenchError(f"{_name(proc)}: no output line within {timeout:.0f}s")
            byte = os.read(fd, 1)
            if not byte:
                raise BenchError(f"{_name(proc)}: exited before its line: {_stderr(proc)}")
            line += byte
    return line.decode().strip()


def _name(proc: subprocess.Popen[bytes]) -> str:
    """A short name for a child in messages: the worker role, or the program."""
    args = [str(a) for a in proc.args] if isinstance(proc.args, list) else [str(proc.args)]
    return " ".join(args[3:5]) if args[1:2] == ["-m"] and args[2] in (WORKERS, STREAM_WORKERS) else Path(args[0]).name


def _stderr(proc: subprocess.Popen[bytes]) -> str:
    with contextlib.suppress(subprocess.TimeoutExpired, ValueError):
        proc.wait(STOP_TIMEOUT)
        return _tail(proc.stderr.read()) if proc.stderr is not None else ""
    return "(still running)"


def start_server(
    role: str, max_seconds: float, *args: object, module: str = WORKERS, stdin: int | None = subprocess.DEVNULL
) -> tuple[subprocess.Popen[bytes], int]:
    """Start a server worker and return it with the port it announced."""
    proc = spawn(worker_argv(role, "--max-seconds", max_seconds, *args, module=module), stdin=stdin)
    line = read_line(proc, 20)
    if not line.startswith("PORT "):
        stop(proc)
        raise BenchError(f"{role}: unexpected first line {line!r}")
    return proc, int(line.split()[1])


def result_of(proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    """Wait (at most `timeout` s) for a worker and parse the JSON object on its last stdout line."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(proc, signal.SIGKILL)
        raise BenchError(f"{_name(proc)}: no result within {timeout:.0f}s") from None
    stop(proc)
    lines = out.decode().strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise BenchError(f"{_name(proc)} exited with {proc.returncode}: {_tail(err)}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def run_worker(role: str, *args: object, timeout: float, module: str = WORKERS) -> dict[str, Any]:
    """Run a client worker to completion and return its JSON result."""
    return result_of(spawn(worker_argv(role, *args, module=module)), timeout)


# -- the engine -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """A snapshot of a process's memory and CPU accounting."""

    rss_kib: int
    hwm_kib: int
    cpu_seconds: float
    at: float
    machine_busy: int  # jiffies all CPUs spent not idle (since boot)
    machine_total: int


def usage(pid: int) -> Usage:
    """VmRSS/VmHWM from /proc/PID/status, the process's user+system CPU time from /proc/PID/stat
    and the whole machine's busy/total CPU time from /proc/stat."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(stat[11]) + int(stat[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15)
    busy, total = machine_cpu()
    return Usage(_kib(fields["VmRSS"]), _kib(fields["VmHWM"]), cpu, time.monotonic(), busy, total)


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from the first line of /proc/stat (idle + iowait are not busy)."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    total = sum(values[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
    return total - values[3] - values[4], total


def _kib(value: str) -> int:
    return int(value.split()[0])


def cpu_percent(before: Usage, after: Usage) -> float:
    """CPU used between two snapshots, in percent of one core."""
    wall = after.at - before.at
    return 100 * (after.cpu_seconds - before.cpu_seconds) / wall if wall > 0 else 0.0


def machine_percent(before: Usage, after: Usage) -> float:
    """How busy the whole machine was between two snapshots, in percent of all its cores."""
    total = after.machine_total - before.machine_total
    return 100 * (after.machine_busy - before.machine_busy) / total if total > 0 else 0.0


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (``echo 5 > /proc/PID/clear_refs``); False if not permitted."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class Engine:
    """``python -m chaos_service engine --port 0`` as a child; its output goes to files in a temp dir."""

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="chaos-bench-engine-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.api_port = 0

    def __enter__(self) -> Engine:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 20.0) -> Engine:
        out, err = self._dir / "stdout.log", self._dir / "stderr.log"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            self.proc = spawn(
                [sys.executable, "-m", "chaos_service", "engine", "--port", "0"],
                stdout=stdout,
                stderr=stderr,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + timeout
        while "API on " not in (text := out.read_text()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise BenchError(f"engine did not start: {text!r} {_tail(err.read_bytes())}")
            time.sleep(0.02)
        url = text.split("API on ", 1)[1].split()[0]
        self.api_port = int(url.rsplit(":", 1)[1].rstrip("/"))
        return self

    def stderr_tail(self, lines: int = 5) -> str:
        path = self._dir / "stderr.log"
        return _tail(path.read_bytes(), lines) if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None
        for path in self._dir.glob("*"):
            path.unlink()
        with contextlib.suppress(OSError):
            self._dir.rmdir()
