"""The chat back-end's parts, started and stopped together, and its running agent runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from chaos_service.sandbox.chat.agent import Agent, Run
from chaos_service.sandbox.chat.config import ChatSettings
from chaos_service.sandbox.chat.fanout import Fanout
from chaos_service.sandbox.chat.hub import Hub
from chaos_service.sandbox.chat.llm import LlmClient
from chaos_service.sandbox.chat.store import ChatStore

log = logging.getLogger(__name__)


class ChatService:
    def __init__(self, settings: ChatSettings) -> None:
        self.settings = settings
        self.hub = Hub(keep_subscriptions=settings.has("leak_events_after_reconnect"))
        self.store = ChatStore(settings)
        self.fanout = Fanout(settings, self.hub)
        self.llm = LlmClient(settings)
        self.agent = Agent(settings, self.store, self.fanout, self.hub, self.llm)
        self._runs: set[asyncio.Task[None]] = set()

    @property
    def active_runs(self) -> int:
        return len(self._runs)

    async def start(self) -> None:
        """Connect to Postgres (required) and Redis (degradable; its absence is logged)."""
        await self.store.open()
        await self.fanout.start()
        if not self.fanout.healthy:
            log.warning("redis is not answering (%s); delivering events directly", self.fanout.last_error)

    async def stop(self) -> None:
        for task in list(self._runs):
            task.cancel()
        await asyncio.gather(*self._runs, return_exceptions=True)
        await self.llm.aclose()
        await self.fanout.close()
        with contextlib.suppress(Exception):
            await self.store.close()

    def start_run(self, run_id: str, user_id: str, content: str, client_msg_id: str | None) -> asyncio.Future[str]:
        """Start a run in the background; the future gives the id whose events the client gets."""
        created: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self.agent.execute(Run(run_id, user_id, content, client_msg_id), created))
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)
        return created
