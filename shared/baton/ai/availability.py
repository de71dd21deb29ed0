"""Which models the router should leave out because their circuit breaker is open.

The breakers live in Redis, shared by every instance; reading them for every request
would cost two round trips, so each instance keeps the answer for a second (scaled by
``BATON_TIME_SCALE``). A model whose breaker opened within that second may still be
chosen; the invoker's own breaker check then sends the request down its chain at no
upstream cost, so the cache only ever costs a fallback hop, never a failed call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from baton.ai.context import RequestContext
from baton.clock import Clock
from baton.kv.breaker import CircuitBreaker
from baton.kv.exceptions import RedisUnavailableError
from baton.kv.scripts import AsyncClient

REFRESH_S = 1.0


class Availability:
    """A per-instance, briefly cached view of the open breakers."""

    def __init__(
        self,
        breaker: CircuitBreaker,
        redis: Callable[[], Awaitable[AsyncClient]],
        clock: Clock,
        refresh_s: float = REFRESH_S,
    ) -> None:
        self._breaker = breaker
        self._redis = redis
        self._clock = clock
        self._refresh_s = refresh_s
        self._open: frozenset[str] = frozenset()
        self._read_at: float | None = None

    async def unavailable(self, ctx: RequestContext) -> frozenset[str]:
        """Model ids to leave out; empty (and ``breaker`` degraded) when Redis is down."""
        now = self._clock.monotonic()
        if self._read_at is not None and now - self._read_at < self._refresh_s:
            return self._open
        try:
            self._open = frozenset(await self._breaker.open_targets(await self._redis()))
        except RedisUnavailableError:
            ctx.degraded.add("breaker")
            return frozenset()
        self._read_at = now
        return self._open
