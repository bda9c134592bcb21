"""A sandbox's processes do not outlive the process that started them, however it ends."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from chaos_service.sandbox.reaper import reap
from chaos_service.sandbox.supervisor import process_alive

OWNER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from chaos_service.sandbox.stack import Sandbox

    sandbox = Sandbox(Path(sys.argv[1]), ports="auto", log_to=open(Path(sys.argv[1]).parent / "log", "w")).start()
    print(json.dumps(sandbox.environment.processes), flush=True)
    time.sleep(120)
    """
)


def sleeper() -> subprocess.Popen[bytes]:
    """A process that looks like one of the sandbox's own (its command line names chaos_service)."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "chaos_service"])


def test_told_stopped_the_reaper_touches_nothing() -> None:
    with sleeper() as proc:
        assert reap(io.StringIO(json.dumps({"engine": proc.pid}) + "\nstopped\n")) == []
        assert proc.poll() is None
        proc.kill()


def test_when_the_owner_goes_silently_the_reaper_kills_what_it_was_told_of() -> None:
    with sleeper() as proc, sleeper() as unrelated:
        killed = reap(io.StringIO(json.dumps({"engine": proc.pid}) + "\n" + json.dumps({"chat": 1 << 22}) + "\n"))
        assert killed == [f"engine (pid {proc.pid})"]
        assert proc.wait(timeout=5) == -signal.SIGKILL
        assert unrelated.poll() is None
        unrelated.kill()


@pytest.mark.timeout(60)
def test_a_sigkilled_owner_leaves_no_sandbox_process_and_no_server_data(tmp_path: Path) -> None:
    command = [sys.executable, "-c", OWNER, str(tmp_path / "stack")]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as owner:
        assert owner.stdout is not None
        processes: dict[str, int] = json.loads(owner.stdout.readline())
        children = {name: pid for name, pid in processes.items() if name != "supervisor"}
        data_dirs = [Path(os.readlink(f"/proc/{processes[kind]}/cwd")) for kind in ("postgres", "redis")]
        assert set(children) == {"postgres", "redis", "llm_stub", "engine", "chat"}
        assert all(process_alive(pid) for pid in children.values())
        owner.kill()
    deadline = time.monotonic() + 30  # the reaper acts on its own schedule: nothing to await from here
    while any(process_alive(pid) for pid in children.values()):
        assert time.monotonic() < deadline, {n: p for n, p in children.items() if process_alive(p)}
        time.sleep(0.05)
    while any(directory.exists() for directory in data_dirs):
        assert time.monotonic() < deadline, data_dirs
        time.sleep(0.05)
