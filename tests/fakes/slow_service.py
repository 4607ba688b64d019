"""A service wrapper that answers late: forces an adapter's defer + follow-up path."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.model import CodeRef, Reply, Request


class SlowService:
    """The real service, slowed down by `delay` seconds per answer (autocomplete stays fast)."""

    def __init__(self, inner: Any, delay: float) -> None:
        self.inner, self.delay = inner, delay

    async def handle(self, request: Request) -> Reply:
        await asyncio.sleep(self.delay)
        reply: Reply = await self.inner.handle(request)
        return reply

    def autocomplete(self, prefix: str, limit: int = 25) -> list[CodeRef]:
        refs: list[CodeRef] = self.inner.autocomplete(prefix, limit)
        return refs

    async def refund(self, request: Request) -> None:
        await self.inner.refund(request)

    async def delivered(self, request: Request) -> None:
        await self.inner.delivered(request)
