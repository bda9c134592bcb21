"""One client connection on /ws: its messages in, its users' run events out.

Events reach the session from the hub (live) and from Postgres (a resume, or a gap the
delivery guard found); the guard decides what is sent, so each run's events go out
exactly once and in ``seq`` order. A writer task sends, so a slow client never blocks
the agent; one that falls too far behind is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from chaos_service.sandbox.chat.delivery import DeliveryGuard, Gap, Release
from chaos_service.sandbox.chat.events import RunEvent
from chaos_service.sandbox.chat.protocol import Ping, Resume, UserMessage, parse_client_message
from chaos_service.sandbox.chat.store import StoreUnavailable

if TYPE_CHECKING:
    from chaos_service.sandbox.chat.service import ChatService

log = logging.getLogger(__name__)

#: Messages queued for a client before it is considered too slow and closed (1013).
MAX_BACKLOG = 20_000
FILL_RETRY = 0.5
FILL_ATTEMPTS = 20


class ChatSession:
    def __init__(self, service: ChatService, websocket: WebSocket, user_id: str) -> None:
        self.service = service
        self.websocket = websocket
        self.user_id = user_id
        self.session_id = uuid.uuid4().hex
        self.guard = DeliveryGuard(ordered=not service.settings.has("reorder_tool_events"))
        self._outbox: asyncio.Queue[str | None] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._fill_attempts: dict[str, int] = {}

    # -- from the hub ---------------------------------------------------------------------

    def receive(self, event: RunEvent) -> None:
        self._apply(self.guard.offer(event))

    def _apply(self, release: Release) -> None:
        for event in release.send:
            self._send_text(event.wire)
        if release.gap is not None:
            self._spawn(self._fill(release.gap))

    def _send_text(self, text: str) -> None:
        if self._outbox.qsize() >= MAX_BACKLOG:
            log.warning("session %s: client too slow, closing", self.session_id)
            self._outbox.put_nowait(None)
            return
        self._outbox.put_nowait(text)

    def _send(self, message: dict[str, Any]) -> None:
        self._send_text(json.dumps(message, separators=(",", ":")))

    async def _fill(self, gap: Gap) -> None:
        try:
            events = await self.service.store.events_after(gap.run_id, gap.first - 1, gap.last)
        except StoreUnavailable as exc:
            attempts = self._fill_attempts[gap.run_id] = self._fill_attempts.get(gap.run_id, 0) + 1
            log.warning("session %s: cannot fill %s (%d): %s", self.session_id, gap, attempts, exc)
            if attempts >= FILL_ATTEMPTS:
                return
            await asyncio.sleep(FILL_RETRY)
            events = []
        self._apply(self.guard.filled(gap.run_id, events))

    # -- the connection ---------------------------------------------------------------------

    async def serve(self) -> None:
        """Read the client's messages until it goes away; the caller has authenticated it."""
        writer = asyncio.create_task(self._write())
        try:
            while True:
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                if text is None:
                    self._send({"type": "error", "error": "send JSON text messages"})
                    continue
                self._handle(text)
                if writer.done():
                    return
        except WebSocketDisconnect:
            return
        finally:
            writer.cancel()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(writer, *self._tasks, return_exceptions=True)

    async def _write(self) -> None:
        while (text := await self._outbox.get()) is not None:
            try:
                await self.websocket.send_text(text)
            except (WebSocketDisconnect, RuntimeError, OSError):
                return
        if self.websocket.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError, OSError):
                await self.websocket.close(1013, "client too slow")

    def _handle(self, text: str) -> None:
        message = parse_client_message(text)
        if isinstance(message, str):
            self._send({"type": "error", "error": message})
        elif isinstance(message, Ping):
            self._send({"type": "pong"})
        elif isinstance(message, UserMessage):
            self._spawn(self._start_run(message))
        elif isinstance(message, Resume):
            self._spawn(self._resume(message))

    async def _start_run(self, message: UserMessage) -> None:
        run_id = uuid.uuid4().hex
        self.guard.follow(run_id, 0)
        created = self.service.start_run(run_id, self.user_id, message.content, message.client_msg_id)
        stored_id = await created
        if stored_id != run_id:  # the same client_msg_id again: deliver that run instead
            await self._replay(stored_id, -1)

    async def _resume(self, message: Resume) -> None:
        try:
            run_id = message.run_id
            if run_id is None:
                run_id = await self.service.store.run_for_message(self.user_id, message.client_msg_id or "")
            owner = None if run_id is None else await self.service.store.run_owner(run_id)
        except StoreUnavailable:
            self._send({"type": "error", "error": "cannot resume now: the run store is unavailable"})
            return
        if run_id is None or owner != self.user_id:
            self._send({"type": "error", "error": "unknown run"})
            return
        await self._replay(run_id, message.after_seq)

    async def _replay(self, run_id: str, after_seq: int) -> None:
        """Send the run's events after ``after_seq``, then a ``resumed`` marker; live ones follow."""
        first = after_seq + (2 if self.service.settings.has("lose_events_on_resume") else 1)
        self.guard.follow(run_id, first, hold=True)
        try:
            events = await self.service.store.events_after(run_id, first - 1)
        except StoreUnavailable:
            self._apply(self.guard.release(run_id))
            self._send({"type": "error", "error": "cannot resume now: the run store is unavailable"})
            return
        offered = [sent for event in events for sent in self.guard.offer(event).send]  # only when unordered
        release = self.guard.release(run_id)
        release.send[:0] = offered
        last_stored = events[-1].seq if events else first - 1
        replayed = [event for event in release.send if event.seq <= last_stored]
        for event in replayed:
            self._send_text(event.wire)
        self._send({"type": "resumed", "run_id": run_id, "replayed": len(replayed)})
        self._apply(Release(send=release.send[len(replayed) :], gap=release.gap))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
