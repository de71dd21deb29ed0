"""Deduplication step: identical in-flight requests share one upstream call.

Until the deduplication issue lands, :meth:`Deduplicator.run` calls upstream for every
request; the orchestrator already routes every upstream call through it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from baton.ai.context import RequestContext

T = TypeVar("T")


class Deduplicator:
    """Runs the upstream call for a request (today: always, without folding)."""

    async def run(self, ctx: RequestContext, call: Callable[[], Awaitable[T]]) -> T:
        return await call()
