"""Session state and the fan-out of run events to a user's connections, through Redis.

An event is published on its user's channel; the process's subscriber hands what it
receives to the local `Hub`. Redis is degradable: while it fails (a publish error, or a
published event that does not come back within ``redis_timeout``), events go to the
hub directly, session state is skipped and a background check waits for Redis to
answer again. With the ``redis_hard_dependency`` defect every call goes to Redis and an
error fails the caller instead (`RedisUnavailable`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from chaos_service.sandbox.chat.config import ChatSettings
from chaos_service.sandbox.chat.events import RunEvent
from chaos_service.sandbox.chat.hub import Hub

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "chat:events:"
SESSION_PREFIX = "chat:session:"
SESSION_TTL = 86_400
RECHECK_INTERVAL = 0.25
STARTUP_WAIT = 5.0
REDIS_ERRORS = (RedisError, OSError, TimeoutError)


class RedisUnavailable(Exception):
    """Redis failed and the back-end treats it as a hard dependency."""


class Fanout:
    def __init__(self, settings: ChatSettings, hub: Hub) -> None:
        self.settings = settings
        self.hub = hub
        self.hard_dependency = settings.has("redis_hard_dependency")
        self._redis = aioredis.Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.redis_timeout,
            socket_connect_timeout=settings.redis_timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
            max_connections=200,
        )
        self._healthy = False
        self._awaiting_echo: dict[tuple[str, int], asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscribed = asyncio.Event()
        self._failed = asyncio.Event()
        self.last_error: str | None = None

    @property
    def healthy(self) -> bool:
        """Whether events currently travel through Redis."""
        return self._healthy

    async def start(self) -> None:
        self._spawn(self._subscribe_forever())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STARTUP_WAIT):
                await self._subscribed.wait()

    async def close(self) -> None:
        for handle in self._awaiting_echo.values():
            handle.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._redis.aclose()

    async def publish(self, event: RunEvent) -> None:
        """Deliver ``event`` to its user's connections, through Redis while it works."""
        if not self._healthy and not self.hard_dependency:
            self.hub.deliver(event)
            return
        key = (event.run_id, event.seq)
        loop = asyncio.get_running_loop()
        self._awaiting_echo[key] = loop.call_later(self.settings.redis_timeout, self._echo_missing, key, event)
        try:
            await self._redis.publish(CHANNEL_PREFIX + event.user_id, event.wire)
        except REDIS_ERRORS as exc:
            handle = self._awaiting_echo.pop(key, None)
            if handle is not None:
                handle.cancel()
            self._fail(exc)
            if self.hard_dependency:
                raise RedisUnavailable(f"redis: {exc!r}") from exc
            self.hub.deliver(event)

    async def open_session(self, session_id: str, user_id: str) -> None:
        await self._session_call(
            self._redis.hset(SESSION_PREFIX + session_id, mapping={"user_id": user_id, "connected_at": time.time()}),
            self._redis.expire(SESSION_PREFIX + session_id, SESSION_TTL),
        )

    async def close_session(self, session_id: str) -> None:
        await self._session_call(self._redis.delete(SESSION_PREFIX + session_id))

    async def ping(self) -> float:
        """Round trip of PING in ms; raises on failure."""
        started = time.perf_counter()
        async with asyncio.timeout(self.settings.health_timeout):
            await self._redis.ping()
        return (time.perf_counter() - started) * 1000

    async def _session_call(self, *calls: object) -> None:
        if not self._healthy and not self.hard_dependency:
            for call in calls:
                if asyncio.iscoroutine(call):
                    call.close()
            return
        try:
            for call in calls:
                await call  # type: ignore[misc]
        except REDIS_ERRORS as exc:
            self._fail(exc)
            if self.hard_dependency:
                raise RedisUnavailable(f"redis: {exc!r}") from exc

    def _echo_missing(self, key: tuple[str, int], event: RunEvent) -> None:
        if self._awaiting_echo.pop(key, None) is None:
            return
        self.hub.deliver(event)
        self._fail(TimeoutError(f"a published event did not come back within {self.settings.redis_timeout:g} s"))

    def _fail(self, exc: BaseException) -> None:
        self.last_error = repr(exc)
        if self._healthy:
            log.warning("redis failed, delivering events directly: %r", exc)
            self._healthy = False
        self._failed.set()

    async def _subscribe_forever(self) -> None:
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(CHANNEL_PREFIX + "*")
                self._failed.clear()
                self._healthy = True
                self.last_error = None
                self._subscribed.set()
                log.info("redis subscription ready")
                await self._receive(pubsub)
            except REDIS_ERRORS as exc:
                self._fail(exc)
            finally:
                with contextlib.suppress(*REDIS_ERRORS):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(RECHECK_INTERVAL)

    async def _receive(self, pubsub: PubSub) -> None:
        """Hand over messages until Redis is seen failing (by us or by a publisher)."""
        failed = asyncio.ensure_future(self._failed.wait())
        try:
            while not self._failed.is_set():
                reading = asyncio.ensure_future(pubsub.get_message(timeout=None))
                reading.add_done_callback(_consume_outcome)
                try:
                    await asyncio.wait({reading, failed}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    if not reading.done():
                        reading.cancel()
                if not reading.done() or reading.cancelled():
                    return
                message = reading.result()
                if message is not None and message.get("type") == "pmessage":
                    self._dispatch(message["data"])
        finally:
            failed.cancel()

    def _dispatch(self, data: bytes | str) -> None:
        try:
            event = RunEvent.from_wire(data.decode() if isinstance(data, bytes) else data)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring a malformed event from redis: %r", exc)
            return
        handle = self._awaiting_echo.pop((event.run_id, event.seq), None)
        if handle is not None:
            handle.cancel()
        self.hub.deliver(event)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _consume_outcome(future: asyncio.Future[Any]) -> None:
    """Mark a read's failure as seen: a read cut short by shutdown is not an error worth a log line."""
    if not future.cancelled():
        future.exception()
