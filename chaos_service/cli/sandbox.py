"""``chaos-service sandbox``: the reference chat back-end, wired to its dependencies through the engine.

``up`` starts the stack in the background and returns once everything answers; ``down`` stops
it; ``status`` shows each process and the back-end's health; ``token`` prints a JWT the
back-end accepts; ``run`` runs the stack in the foreground (Ctrl-C stops it). See
docs/sandbox.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from chaos_service.errors import ChaosServiceError, InvalidInput

if TYPE_CHECKING:
    from chaos_service.sandbox.environment import Environment
    from chaos_service.sandbox.stack import Sandbox

DEFAULT_DIR = ".chaos/sandbox"
LOG_FILE = "sandbox.log"
UP_TIMEOUT = 120.0
DOWN_TIMEOUT = 30.0
LOG_TAIL_LINES = 30
USER_PATTERN = re.compile(r"[A-Za-z0-9_.\-@]{1,64}")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "sandbox",
        help="run the sandbox: a chat back-end behind the fault engine",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="sandbox_command", metavar="SUBCOMMAND", required=True)
    up = sub.add_parser("up", help="start the sandbox in the background", description=_up.__doc__)
    run = sub.add_parser("run", help="run the sandbox in the foreground", description=_run.__doc__)
    for command in (up, run):
        _add_dir(command)
        command.add_argument(
            "--ports",
            choices=("fixed", "auto"),
            default="fixed",
            help="fixed: the well-known ports (default); auto: free ports for everything",
        )
        command.add_argument(
            "--defect", action="append", default=[], metavar="NAME", help="switch on a seeded defect (repeatable)"
        )
        command.add_argument("--postgres-url", help="use this Postgres server instead of a private one")
        command.add_argument("--redis-url", help="use this Redis server instead of a private one")
        command.add_argument("--seed", type=int, help="seed for the engine's random draws (reproducible runs)")
    up.set_defaults(handler=_up)
    run.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    run.set_defaults(handler=_run)
    down = sub.add_parser("down", help="stop the sandbox", description=_down.__doc__)
    _add_dir(down)
    down.set_defaults(handler=_down)
    status = sub.add_parser("status", help="show the sandbox's processes and health", description=_status.__doc__)
    _add_dir(status)
    status.set_defaults(handler=_status)
    token = sub.add_parser("token", help="print a JWT the chat back-end accepts", description=_token.__doc__)
    token.add_argument("user", metavar="USER", help="the token's subject: 1-64 letters, digits, _ . - @")
    token.add_argument("--ttl", type=float, default=3600.0, help="seconds until it expires (default 3600)")
    _add_dir(token)
    token.set_defaults(handler=_token)


def _add_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir", type=Path, default=Path(DEFAULT_DIR), help=f"sandbox directory (default {DEFAULT_DIR})"
    )


def _fail(message: str, code: int = 2) -> int:
    print(f"chaos-service sandbox: {message}", file=sys.stderr)
    return code


def _up(args: argparse.Namespace) -> int:
    """Start the sandbox in the background; return once everything answers (exit 2: fix the input)."""
    from chaos_service.sandbox.environment import ENVIRONMENT_FILE, Environment
    from chaos_service.sandbox.supervisor import running_pid

    try:
        _sandbox(args).check()
        directory = args.dir.resolve()
        directory.mkdir(parents=True, exist_ok=True)
    except InvalidInput as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"cannot create the sandbox directory {args.dir}: {exc.strerror or exc}")
    if (pid := running_pid(directory)) is not None:
        return _fail(
            f"a sandbox is already running in {directory} (pid {pid or 'unknown'}): stop it with "
            f"`chaos-service sandbox down --dir {directory}` or use another --dir"
        )
    read_end, write_end = os.pipe()
    log_path = directory / LOG_FILE
    argv = [sys.executable, "-m", "chaos_service", "sandbox", "run", *_forwarded(args, directory)]
    with log_path.open("w") as log_file:
        supervisor = subprocess.Popen(
            [*argv, "--ready-fd", str(write_end)],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            pass_fds=(write_end,),
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    os.close(write_end)
    try:
        report = _read_report(read_end, UP_TIMEOUT)
    except KeyboardInterrupt:
        _terminate(supervisor)
        return _fail("interrupted; the sandbox was stopped", 130)
    finally:
        os.close(read_end)
    if report is None:
        _terminate(supervisor)
        return _fail(f"the sandbox did not start within {UP_TIMEOUT:g} s; {_log_tail(log_path)}", 1)
    if report.get("ready") is True:
        try:
            environment = Environment.load(directory / ENVIRONMENT_FILE)
        except InvalidInput as exc:  # it was removed or replaced under us
            return _fail(f"the sandbox started, but {exc}", 1)
        print(describe(environment, directory), end="")
        print(f"  log: {log_path}\n  stop it with: chaos-service sandbox down --dir {directory}")
        return 0
    try:
        code = supervisor.wait(DOWN_TIMEOUT)
    except subprocess.TimeoutExpired:
        _terminate(supervisor)
        code = 1
    if "error" in report:
        code = 2 if report.get("exit") == 2 else 1
        return _fail(str(report["error"]) if code == 2 else f"{report['error']}\n{_log_tail(log_path)}", code)
    return _fail(f"the sandbox supervisor exited with code {code}; {_log_tail(log_path)}", 2 if code == 2 else 1)


def _forwarded(args: argparse.Namespace, directory: Path) -> list[str]:
    argv = ["--dir", str(directory), "--ports", args.ports]
    for defect in args.defect:
        argv += ["--defect", defect]
    for flag, value in (("--postgres-url", args.postgres_url), ("--redis-url", args.redis_url), ("--seed", args.seed)):
        if value is not None:
            argv += [flag, str(value)]
    return argv


def _read_report(fd: int, timeout: float) -> dict[str, object] | None:
    """What the supervisor wrote to the ready pipe before closing it ({} if it died); None on timeout."""
    data = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            if not selector.select(max(0.0, deadline - time.monotonic())):
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            data += chunk
    with contextlib.suppress(ValueError):
        report = json.loads(data or b"{}")
        if isinstance(report, dict):
            return report
    return {}


def _terminate(supervisor: subprocess.Popen[bytes]) -> None:
    supervisor.terminate()
    try:
        supervisor.wait(DOWN_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(supervisor.pid, signal.SIGKILL)
        supervisor.wait()


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    except OSError:
        return f"see {path}"
    return f"last lines of {path}:\n" + "\n".join(f"  {line}" for line in lines)


def _sandbox(args: argparse.Namespace) -> Sandbox:
    from chaos_service.sandbox.stack import Sandbox

    return Sandbox(
        args.dir,
        ports=args.ports,
        defects=args.defect,
        postgres_url=args.postgres_url,
        redis_url=args.redis_url,
        seed=args.seed,
    )


def _run(args: argparse.Namespace) -> int:
    """Run the sandbox in the foreground until Ctrl-C or SIGTERM, then stop everything."""
    from chaos_service.sandbox.datastores import DatastoreUnavailable

    ready = False

    def report(document: dict[str, object]) -> None:
        if args.ready_fd is not None:
            with contextlib.suppress(OSError):
                os.write(args.ready_fd, json.dumps(document).encode() + b"\n")
                os.close(args.ready_fd)
            args.ready_fd = None

    sandbox = _sandbox(args)
    for sig in (signal.SIGINT, signal.SIGTERM):  # both end the foreground wait below (even if inherited ignored)
        signal.signal(sig, signal.default_int_handler)
    try:
        try:
            sandbox.start()
        except (InvalidInput, DatastoreUnavailable) as exc:
            report({"ready": False, "exit": 2, "error": str(exc)})
            return _fail(str(exc))
        except ChaosServiceError as exc:
            report({"ready": False, "exit": 1, "error": str(exc)})
            return _fail(str(exc), 1)
        print(describe(sandbox.environment, sandbox.directory), end="", flush=True)
        report({"ready": True, "pid": os.getpid()})
        ready = True
        while True:
            signal.pause()
    except KeyboardInterrupt:
        if not ready:
            report({"ready": False, "exit": 1, "error": "interrupted while starting"})
            return _fail("interrupted while starting; everything started was stopped", 1)
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        sandbox.stop()
        if ready:
            print("chaos-service sandbox: stopped", flush=True)


def _down(args: argparse.Namespace) -> int:
    """Stop the sandbox and remove its private servers' data."""
    from chaos_service.sandbox.environment import ENVIRONMENT_FILE, Environment
    from chaos_service.sandbox.supervisor import running_pid, shut_down

    directory = args.dir.resolve()
    env_path = directory / ENVIRONMENT_FILE
    try:
        processes = Environment.load(env_path).processes
    except InvalidInput:
        processes = {}
    if running_pid(directory) is None and not processes and not env_path.exists():
        print(f"chaos-service sandbox: no sandbox is running in {directory}")
        return 0
    for note in shut_down(directory, processes, DOWN_TIMEOUT):
        print(f"chaos-service sandbox: {note}")
    with contextlib.suppress(FileNotFoundError):
        env_path.unlink()
    print(f"chaos-service sandbox: stopped the sandbox in {directory}")
    return 0


def _status(args: argparse.Namespace) -> int:
    """Show each process of the sandbox and the chat back-end's health (exit 1 if anything is not well)."""
    from chaos_service.sandbox.environment import ENVIRONMENT_FILE, Environment

    directory = args.dir.resolve()
    try:
        environment = Environment.load(directory / ENVIRONMENT_FILE)
    except InvalidInput as exc:
        return _fail(str(exc))
    text, healthy = status_report(environment, directory)
    print(text, end="")
    return 0 if healthy else 1


def _token(args: argparse.Namespace) -> int:
    """Print a JWT for USER, signed with the running sandbox's secret."""
    from chaos_service.sandbox.chat.auth import issue_token
    from chaos_service.sandbox.environment import ENVIRONMENT_FILE, Environment

    if not USER_PATTERN.fullmatch(args.user):
        return _fail(f"invalid user {args.user!r}: use 1-64 letters, digits, _ . - @")
    if not args.ttl > 0:
        return _fail("--ttl must be > 0")
    try:
        environment = Environment.load(args.dir.resolve() / ENVIRONMENT_FILE)
    except InvalidInput as exc:
        return _fail(str(exc))
    print(issue_token(environment.auth.secret, args.user, args.ttl))
    return 0


_PROCESS_NAMES = ("supervisor", "postgres", "redis", "llm_stub", "engine", "chat")


def _where(environment: Environment, name: str) -> str:
    direct, endpoints = environment.direct, environment.endpoints
    return {
        "postgres": direct.get("postgres", ""),
        "redis": direct.get("redis", ""),
        "llm_stub": direct.get("llm", ""),
        "engine": environment.engine,
        "chat": endpoints.get("health", ""),
    }.get(name, "")


def _table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows)
    return "".join(line.rstrip() + "\n" for line in lines)


def describe(environment: Environment, directory: Path) -> str:
    """What runs where: processes, proxies, endpoints, defects and the environment file."""
    processes = [("process", "pid", "address")]
    for name in _PROCESS_NAMES:
        pid = environment.processes.get(name)
        processes.append((name, str(pid) if pid is not None else "external", _where(environment, name)))
    proxies = [("proxy", "protocol", "listen", "upstream")]
    proxies += [(name, p.protocol, p.listen, p.upstream) for name, p in environment.proxies.items()]
    endpoints = [("endpoint", "through the proxies")]
    endpoints += list(environment.endpoints.items())
    return (
        f"chaos-service sandbox: running in {directory}\n"
        + _table(processes)
        + "\n"
        + _table(proxies)
        + "\n"
        + _table(endpoints)
        + "\n"
        + f"  defects: {', '.join(environment.defects) or 'none'}\n"
        + f"  environment: {directory / 'environment.json'}\n"
        + f"  a client token: chaos-service sandbox token USER --dir {directory}\n"
    )


def status_report(environment: Environment, directory: Path) -> tuple[str, bool]:
    """Each process (running or not) and the chat back-end's health; and whether all is well."""
    import httpx

    from chaos_service.sandbox.supervisor import process_alive

    healthy = True
    rows = [("process", "pid", "state", "address")]
    for name in _PROCESS_NAMES:
        pid = environment.processes.get(name)
        if pid is None:
            state = "external"
        elif process_alive(pid):
            state = "running"
        else:
            state, healthy = "NOT RUNNING", False
        rows.append((name, str(pid) if pid is not None else "-", state, _where(environment, name)))
    lines = [f"chaos-service sandbox: {directory}\n", _table(rows)]
    url = environment.endpoints.get("health", "")
    try:
        response = httpx.get(url, timeout=5.0)
        health = response.json()
        if not isinstance(health, dict):
            raise ValueError("not a JSON object")
    except (httpx.HTTPError, ValueError) as exc:
        lines.append(f"  health: no answer from {url}: {exc}\n")
        return "".join(lines), False
    status = str(health.get("status", f"HTTP {response.status_code}"))
    healthy = healthy and status == "ok"
    lines.append(f"  health: {status} ({url})\n")
    dependencies = health.get("dependencies")
    if isinstance(dependencies, dict):
        checks = [("dependency", "status", "latency", "error")]
        for name, check in dependencies.items():
            check = check if isinstance(check, dict) else {}
            latency = check.get("latency_ms")
            checks.append(
                (
                    str(name),
                    str(check.get("status", "?")),
                    f"{latency:.1f} ms" if isinstance(latency, int | float) else "-",
                    str(check.get("error") or ""),
                )
            )
        lines.append(_table(checks))
    defects = health.get("defects") or []
    lines.append(
        f"  sessions: {health.get('sessions', '?')}, active runs: {health.get('active_runs', '?')}, "
        f"defects: {', '.join(map(str, defects)) or 'none'}\n"
    )
    return "".join(lines), healthy
