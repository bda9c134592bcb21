"""Chat virtual users: long-lived WebSocket sessions that run short agent turns and record everything.

A `ChatVirtualUser` is one user of the chat back-end (docs/sandbox.md) on one long-lived
connection, opened at its first attempt and authenticated with ``?token=``. An attempt
sends one ``message`` with a unique ``client_msg_id`` and waits for its run's terminal
event. A reader task appends every message received, with its `time.monotonic` receive
time, to the arrival log (`ChatVirtualUser.arrivals`) that the checkers grade.

Like a real client, a user whose connection ends (a close, a reset, or no message and
no pong for ``2 * idle_timeout`` while a run is unfinished) reconnects with jittered
exponential backoff and resumes each unfinished run after the highest ``seq`` it saw:
by ``run_id``, or by ``client_msg_id`` when the run id was never learned (the message is
sent again: the back-end replays the run it started, or starts it if the first copy
never arrived). Runs unfinished after ``run_timeout`` are given up; an application close
code (4000-4999, e.g. 4401 for a refused token) is not retried.

An attempt is OK when its run ended with ``agent_completed``, its events as delivered
pass `check_run` against the user's run grammar (``sequence``; by default the sandbox's,
`DEFAULT_RUN_SPEC`), their ``seq`` run from 0 to the terminal one exactly once and in
order, and no other user's event arrived since the previous attempt was graded; else
INVALID with every reason. A connection that cannot be opened or refuses the user is an
ERROR; a run that never ends, a TIMEOUT at the runner's deadline. Details: ``connect_s``
(attempt start to send), ``started_s``, ``first_token_s``, ``terminal_s`` (from the
send), ``run_id``, ``client_msg_id``, ``terminal``, ``events``, the ``lost``,
``duplicated`` and ``late`` seqs, ``leaks``, ``reconnects`` (during the attempt), ``resumes``.

`chaos_service.probes.kinds.crowd.VirtualUsers` runs N of them open-loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from chaos_service.probes.checkers.delivery import DeliveryReport, check_delivery
from chaos_service.probes.checkers.sequence import DEFAULT_RUN_SPEC, RunSpec, check_run
from chaos_service.probes.kinds.base import ProbeFailure, positive, verdict
from chaos_service.probes.records import Observation
from chaos_service.sandbox.chat.events import AGENT_COMPLETED, AGENT_STARTED, AGENT_THINKING, TERMINAL

CONTENT = "[[stub tokens=5]]"
MAX_RECONNECT_TRIES = 10_000  # per outage; the run_timeout ends an outage's retries long before
MAX_RESUME_RETRIES = 3  # per run, after the back-end answered a resume with an error
PING = json.dumps({"type": "ping"})


def run_spec(pattern: str) -> RunSpec:
    """The run grammar ``pattern`` with tool calls paired by ``data.call_id``, as in `DEFAULT_RUN_SPEC`.

    Raises:
        InvalidInput: ``pattern`` is not a valid run grammar.
    """
    return RunSpec(pattern, pairs=DEFAULT_RUN_SPEC.pairs)


@dataclass(frozen=True, slots=True)
class Arrival:
    """One message as received: ``at`` on `time.monotonic`, on the user's ``connection``-th connection."""

    at: float
    connection: int
    message: Mapping[str, Any]  # the parsed JSON object; ``{"unparsed": text}`` for anything else


@dataclass(slots=True)
class ConnectionRecord:
    """One connection of a user; ``code`` ``None`` when it ended without a close frame (reset, abort, stall)."""

    number: int  # 1 for the first connection, 2 after the first reconnect, ...
    opened: float
    closed: float | None = None
    code: int | None = None
    reason: str = ""


@dataclass(eq=False)
class ChatRun:
    """One message's run as the user saw it; ``events`` are the run's events in arrival order."""

    client_msg_id: str
    sent: float
    connection: int  # the connection its message or last resume went out on
    run_id: str | None = None
    events: list[Mapping[str, Any]] = field(default_factory=list)
    last_seq: int = -1
    resumes: int = 0
    resume_pending: bool = False  # a resume by run_id went out and its ``resumed`` marker has not come
    started_at: float | None = None
    first_token_at: float | None = None
    ended_at: float | None = None
    terminal: Mapping[str, Any] | None = None
    failure: str | None = None  # why the user gave the run up
    done: asyncio.Event = field(default_factory=asyncio.Event)  # set when it ended or was given up


class ChatVirtualUser:
    """``user`` on the chat endpoint ``url`` (``ws://…/ws``) with ``token``; each call is one attempt.

    ``sequence`` is the run grammar every run is checked against: a pattern (see `run_spec`)
    or a `RunSpec`; default `DEFAULT_RUN_SPEC`.
    """

    def __init__(
        self,
        url: str,
        user: str,
        token: str,
        *,
        content: str = CONTENT,
        sequence: str | RunSpec | None = None,
        open_timeout: float = 10.0,
        idle_timeout: float = 5.0,
        close_timeout: float = 2.0,
        backoff: float = 0.05,
        max_backoff: float = 2.0,
        run_timeout: float = 45.0,
        seed: int | None = None,
        name: str | None = None,
    ) -> None:
        timings = {"open_timeout": open_timeout, "idle_timeout": idle_timeout, "close_timeout": close_timeout,
                   "backoff": backoff, "max_backoff": max_backoff, "run_timeout": run_timeout}  # fmt: skip
        for what, value in timings.items():
            positive(value, what)
        self.name = name or f"chat:{user}"
        self.user = user
        self.url = f"{url}{'&' if '?' in url else '?'}token={quote(token)}"
        self.content = content
        self.spec = _spec(sequence)
        self.open_timeout, self.idle_timeout, self.close_timeout = open_timeout, idle_timeout, close_timeout
        self.backoff, self.max_backoff, self.run_timeout = backoff, max_backoff, run_timeout
        self.arrivals: list[Arrival] = []
        self.connections: list[ConnectionRecord] = []
        self.runs: dict[str, ChatRun] = {}  # by client_msg_id, in send order
        self.connect_failures = 0
        self._by_run_id: dict[str, ChatRun] = {}
        self._open: dict[str, ChatRun] = {}  # sent and not finished, by client_msg_id
        self._ids = itertools.count(1)
        self._prefix = f"{user}-{secrets.token_hex(6)}"  # unique across processes: the back-end keeps old ids
        self._random = random.Random(seed)
        self._connection: ClientConnection | None = None
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._graded = 0  # arrivals already searched for other users' events
        self._closed = False

    # -- what it saw --------------------------------------------------------------------------

    @property
    def reconnects(self) -> int:
        return max(0, len(self.connections) - 1)

    def leaks(self) -> list[Arrival]:
        """Every received event that belongs to another user."""
        return [a for a in self.arrivals if a.message.get("user_id") not in (None, self.user)]

    def delivery_report(self) -> DeliveryReport:
        """What this user received against what it was entitled to: seq 0..terminal of each completed run."""
        expected = [(run.run_id, seq) for run in self.runs.values() if run.terminal is not None and run.run_id
                    for seq in range(_last(run.terminal) + 1)]  # fmt: skip
        received = [a.message for a in self.arrivals if "seq" in a.message]
        return check_delivery(expected, received, subscriber=self.user, spec=self.spec)

    # -- one attempt --------------------------------------------------------------------------

    async def __call__(self) -> Observation:
        if self._closed:
            raise ProbeFailure("the virtual user is closed")
        began, opened_before = time.monotonic(), len(self.connections)
        connection, number = await self.connect()
        run = ChatRun(f"{self._prefix}-{next(self._ids)}", time.monotonic(), connection=number)
        self.runs[run.client_msg_id] = self._open[run.client_msg_id] = run
        with contextlib.suppress(ConnectionClosed):  # the reader sees the close; the recovery resends it
            await connection.send(self._message(run))
        try:
            async with asyncio.timeout(self.run_timeout):
                await run.done.wait()
        except TimeoutError:
            self._finish(run, f"no terminal event within {self.run_timeout:g} s")
        if run.terminal is None:
            raise ProbeFailure(run.failure or "the run did not end")
        return self._grade(run, run.sent - began, sum(1 for c in self.connections[opened_before:] if c.number > 1))

    def _grade(self, run: ChatRun, connect_s: float, reconnects: int) -> Observation:
        terminal, ended, run_id = run.terminal or {}, run.ended_at or run.sent, run.run_id or ""
        data = terminal.get("data")
        sequence = check_run(run.events, self.spec)
        expected = [(run_id, seq) for seq in range(_last(terminal) + 1)]
        report = check_delivery(expected, run.events, subscriber=self.user, spec=self.spec)
        fresh, self._graded = self.arrivals[self._graded :], len(self.arrivals)
        leaks = sum(1 for a in fresh if a.message.get("user_id") not in (None, self.user))
        reasons = [
            None
            if terminal.get("type") == AGENT_COMPLETED
            else f"agent_error ({data.get('reason') if isinstance(data, Mapping) else None})",
            None if sequence.valid else f"sequence: {sequence.message}",
            f"lost seq {_seqs(report.lost_gaps + report.lost_tail)}" if report.lost else None,
            f"seq {_seqs(report.duplicated)} delivered more than once" if report.duplicates else None,
            f"seq {_seqs(report.late)} delivered after a later one" if report.late else None,
            f"{leaks} event(s) of other users received" if leaks else None,
        ]
        details = {
            "run_id": run.run_id,
            "client_msg_id": run.client_msg_id,
            "terminal": terminal.get("type"),
            "events": len(run.events),
            "connect_s": connect_s,
            "started_s": None if run.started_at is None else run.started_at - run.sent,
            "first_token_s": None if run.first_token_at is None else run.first_token_at - run.sent,
            "terminal_s": ended - run.sent,
            "lost": [seq for _, seq in report.lost_gaps + report.lost_tail],
            "duplicated": [seq for _, seq in report.duplicated],
            "late": [seq for _, seq in report.late],
            "leaks": leaks,
            "reconnects": reconnects,
            "resumes": run.resumes,
        }
        return verdict(reasons, details)

    # -- the connection -----------------------------------------------------------------------

    async def connect(self) -> tuple[ClientConnection, int]:
        """The open connection and its number, opening one (and resuming unfinished runs) if there is none."""
        async with self._lock:
            if self._connection is not None:
                return self._connection, len(self.connections)
            if self._closed:
                raise ProbeFailure("the virtual user is closed")
            try:
                connection = await connect(self.url, open_timeout=self.open_timeout, close_timeout=self.close_timeout,
                                           ping_interval=None, proxy=None, compression=None)  # fmt: skip
            except Exception:
                self.connect_failures += 1
                raise
            if self._closed:  # closed while the handshake was under way
                connection.transport.abort()
                raise ProbeFailure("the virtual user is closed")
            record = ConnectionRecord(len(self.connections) + 1, time.monotonic())
            self.connections.append(record)
            self._connection = connection
            self._spawn(self._read(connection, record))
            with contextlib.suppress(ConnectionClosed):
                for run in list(self._open.values()):
                    if run.connection < record.number:
                        await self._resume(connection, run, record.number)
            return connection, record.number

    async def _resume(self, connection: ClientConnection, run: ChatRun, number: int) -> None:
        run.connection = number
        run.resumes += 1
        if run.run_id is None:  # never learned its id: the same message again replays the run it started
            await connection.send(self._message(run))
        else:
            run.resume_pending = True
            await connection.send(json.dumps({"type": "resume", "run_id": run.run_id, "after_seq": run.last_seq}))

    def _message(self, run: ChatRun) -> str:
        return json.dumps({"type": "message", "content": self.content, "client_msg_id": run.client_msg_id})

    async def _read(self, connection: ClientConnection, record: ConnectionRecord) -> None:
        """Receive until the connection ends; a stall (no message, not even a pong) counts as its end."""
        code: int | None = None
        reason = ""
        pinged = False
        try:
            while True:
                try:
                    async with asyncio.timeout(self.idle_timeout):
                        raw = await connection.recv()
                except TimeoutError:  # idle: fine unless a run is unfinished
                    self._expire()
                    if self._open and pinged:
                        reason = f"no message for {2 * self.idle_timeout:g} s, not even a pong"
                        connection.transport.abort()
                        break
                    if pinged := bool(self._open):
                        await connection.send(PING)
                    continue
                pinged = False
                self._receive(raw, record.number)
        except ConnectionClosed as closed:
            if closed.rcvd is not None:
                code, reason = closed.rcvd.code, closed.rcvd.reason
            else:
                reason = "no close frame" + (f" ({closed.__cause__!r})" if closed.__cause__ else "")
        except Exception as exc:  # a broken transport: the connection is gone either way
            reason = f"{type(exc).__name__}: {exc}"
            connection.transport.abort()
        record.closed, record.code, record.reason = time.monotonic(), code, reason
        if self._connection is connection:
            self._connection = None
        if code is not None and 4000 <= code < 5000:  # the back-end refuses this user: retrying cannot help
            for run in list(self._open.values()):
                self._finish(run, f"the server closed the connection with {code} ({reason})")
        await self._recover()

    async def _recover(self) -> None:
        """Reconnect (at once, then with jittered exponential backoff) while runs are unfinished."""
        delay = self.backoff
        for _ in range(MAX_RECONNECT_TRIES):
            self._expire()
            if self._closed or not self._open:
                return
            if self._connection is None:
                with contextlib.suppress(Exception):  # counted in connect_failures
                    await self.connect()
                if self._connection is not None:
                    return
            await asyncio.sleep(delay * (0.5 + self._random.random() / 2))
            delay = min(2 * delay, self.max_backoff)

    def _receive(self, raw: str | bytes, number: int) -> None:
        at = time.monotonic()
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            message = {"unparsed": raw if isinstance(raw, str) else raw.decode(errors="replace")}
        self.arrivals.append(Arrival(at, number, message))
        kind = message.get("type")
        if kind == "resumed":
            run = self._by_run_id.get(str(message.get("run_id")))
            if run is not None:
                run.resume_pending = False
        elif kind == "error":
            waiting = [run for run in self._open.values() if run.resume_pending]
            if len(waiting) == 1 and waiting[0].resumes <= MAX_RESUME_RETRIES:  # the refusal can only be its
                self._spawn(self._resume_later(waiting[0], number))
        elif message.get("user_id") == self.user and (run := self._run_of(message)) is not None:
            run.events.append(message)
            seq = message.get("seq")
            if isinstance(seq, int):
                run.last_seq = max(run.last_seq, seq)
            if kind == AGENT_STARTED and run.started_at is None:
                run.started_at = at
            elif kind == AGENT_THINKING and run.first_token_at is None:
                run.first_token_at = at
            elif kind in TERMINAL and run.terminal is None:
                run.terminal, run.ended_at = message, at
                self._finish(run)

    def _run_of(self, event: Mapping[str, Any]) -> ChatRun | None:
        """The run an event of this user belongs to; its id is learned from ``agent_started``."""
        run_id = str(event.get("run_id"))
        run = self._by_run_id.get(run_id)
        if run is not None:
            return run
        data = event.get("data")
        if event.get("type") == AGENT_STARTED and isinstance(data, Mapping):
            run = self.runs.get(str(data.get("client_msg_id")))
        else:  # a replay that does not start at seq 0: only an unnamed run can be its
            unnamed = [r for r in self._open.values() if r.run_id is None]
            run = unnamed[0] if len(unnamed) == 1 else None
        if run is not None and run.run_id is None:
            run.run_id = run_id
            self._by_run_id[run_id] = run
        return run if run is not None and run.run_id == run_id else None

    async def _resume_later(self, run: ChatRun, number: int) -> None:
        await asyncio.sleep(self.backoff)
        connection = self._connection
        if connection is not None and len(self.connections) == number and run.resume_pending and not run.done.is_set():
            with contextlib.suppress(ConnectionClosed):
                await self._resume(connection, run, number)

    def _expire(self) -> None:
        """Give up the runs sent more than ``run_timeout`` ago."""
        now = time.monotonic()
        for run in list(self._open.values()):
            if now - run.sent > self.run_timeout:
                self._finish(run, f"no terminal event within {self.run_timeout:g} s")

    def _finish(self, run: ChatRun, failure: str | None = None) -> None:
        """The run ended (its terminal event arrived) or, with a ``failure``, was given up."""
        if failure is not None and not run.done.is_set():
            run.failure = failure
        self._open.pop(run.client_msg_id, None)
        run.done.set()

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Close the connection (abort it if the close handshake does not end in time) and stop every task."""
        self._closed = True
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                async with asyncio.timeout(self.close_timeout):
                    await connection.close()
            except Exception:
                connection.transport.abort()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for run in list(self._open.values()):
            self._finish(run, "the virtual user was closed")


def _spec(sequence: str | RunSpec | None) -> RunSpec:
    if sequence is None:
        return DEFAULT_RUN_SPEC
    return run_spec(sequence) if isinstance(sequence, str) else sequence


def _seqs(keys: Sequence[tuple[str, int]]) -> str:
    return ", ".join(str(seq) for _, seq in keys)


def _last(terminal: Mapping[str, Any]) -> int:
    """The terminal event's seq: the run's last (-1 if it has none)."""
    seq = terminal.get("seq")
    return seq if isinstance(seq, int) else -1
