"""Many chat virtual users run open-loop, phase-shifted so that together they sample every ``period / N``."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from chaos_service.probes.checkers.delivery import DeliveryReport
from chaos_service.probes.kinds.chat import ChatVirtualUser
from chaos_service.probes.records import ProbeResult
from chaos_service.probes.schedule import OpenLoopRunner, Schedule
from chaos_service.sandbox.chat.auth import issue_token
from chaos_service.sandbox.environment import Environment


class VirtualUsers:
    """N chat users run open-loop: user ``i`` every ``period`` s from ``i * period / N``, with ``deadline`` each."""

    def __init__(self, url: str, tokens: Mapping[str, str], *, period: float, deadline: float, **options: Any) -> None:
        self.users = [ChatVirtualUser(url, user, token, **options) for user, token in tokens.items()]
        count = max(1, len(self.users))
        self.runners = [
            OpenLoopRunner(user, Schedule(period, deadline, phase=i * period / count))
            for i, user in enumerate(self.users)
        ]

    @classmethod
    def from_environment(
        cls, env: Environment, count: int, *, prefix: str = "vu-", token_ttl: float = 3600.0, **options: Any
    ) -> VirtualUsers:
        """``count`` users ``prefix0``, ``prefix1``, … of the sandbox's chat endpoint through its proxy."""
        tokens = {f"{prefix}{n}": issue_token(env.auth.secret, f"{prefix}{n}", token_ttl) for n in range(count)}
        return cls(env.endpoints["chat_ws"], tokens, **options)

    async def run(self, start: float, until: float, stop: asyncio.Event | None = None) -> list[ProbeResult]:
        """Every user's attempts due in ``[start, until)``, in scheduled order; every user is closed at the end."""
        try:
            per_user = await asyncio.gather(*(runner.run(start, until, stop) for runner in self.runners))
        finally:
            await self.close()
        return sorted((r for results in per_user for r in results), key=lambda r: (r.scheduled, r.probe))

    async def close(self) -> None:
        await asyncio.gather(*(user.close() for user in self.users))

    def delivery_reports(self) -> dict[str, DeliveryReport]:
        return {user.user: user.delivery_report() for user in self.users}
