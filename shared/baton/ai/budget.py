"""The budget step: monthly spending budgets per tier and per key, enforced for every
request (an explicit model too), counted atomically in Redis (:mod:`baton.kv.budget`).

The budget that applies is the key's own (``monthly_budget_usd`` override) or else its
tier's (``BATON_BUDGET_<TIER>_USD``); spend is the tenant's, shared by all its keys.
A spent budget is 402 ``budget_exceeded``, never 429, because SDKs retry 429s. When
Redis is down the step follows ``BATON_BUDGET_FAIL_OPEN``: serve and say
``x-baton-degraded: budget`` (usage still reaches the store), or answer 503.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from baton.ai.context import RequestContext
from baton.config import Settings
from baton.errors import BudgetExceededError, UpstreamUnavailableError
from baton.kv.budget import BudgetLedger
from baton.kv.exceptions import RedisUnavailableError
from baton.kv.scripts import AsyncClient, SyncClient
from baton.store.base import ApiKeyRecord
from baton.usage import MICRO_USD_PER_USD


class BudgetGuard:
    """Reads the remaining budget, reserves a request's estimate, settles its cost."""

    def __init__(
        self,
        settings: Settings,
        ledger: BudgetLedger,
        redis: Callable[[], Awaitable[AsyncClient]],
    ) -> None:
        self._settings = settings
        self._ledger = ledger
        self._redis = redis

    def monthly_budget_micro_usd(self, key: ApiKeyRecord) -> int | None:
        """The key's override, else its tier's budget; None means unlimited."""
        override = key.overrides.monthly_budget_micro_usd
        if override is not None:
            return override
        tier_budget = getattr(self._settings, f"budget_{key.tier}_usd")
        return None if tier_budget is None else int(tier_budget * MICRO_USD_PER_USD)

    async def remaining(self, ctx: RequestContext) -> int | None:
        """Micro-dollars left this month (None: unlimited, or unknown while degraded)."""
        budget = self.monthly_budget_micro_usd(ctx.key)
        if budget is None:
            return None
        try:
            used = await self._ledger.used(await self._redis(), ctx.tenant)
        except RedisUnavailableError as exc:
            self._degrade(ctx, exc)
            return None
        return budget - used

    def remaining_sync(
        self, key: ApiKeyRecord, redis: Callable[[], SyncClient]
    ) -> tuple[int | None, bool]:
        """Remaining micro-dollars for the synchronous HTTP API handlers, and whether
        Redis was unreachable (then None: route-suggest never refuses for that)."""
        budget = self.monthly_budget_micro_usd(key)
        if budget is None:
            return None, False
        try:
            return budget - self._ledger.used_sync(redis(), key.user), False
        except RedisUnavailableError:
            return None, True

    async def reserve(self, ctx: RequestContext, estimate_micro_usd: int) -> None:
        """Admit the request's estimated cost, or 402."""
        budget = self.monthly_budget_micro_usd(ctx.key)
        if budget is None:
            return
        try:
            reservation = await self._ledger.reserve(
                await self._redis(), ctx.tenant, budget, estimate_micro_usd
            )
        except RedisUnavailableError as exc:
            self._degrade(ctx, exc)
            return
        if not reservation.admitted:
            left = max(0, budget - reservation.used_micro_usd) / MICRO_USD_PER_USD
            raise BudgetExceededError(
                f"The monthly budget of ${budget / MICRO_USD_PER_USD:.2f} is spent or too "
                f"low for this request (${left:.6f} left, this request is estimated at "
                f"${estimate_micro_usd / MICRO_USD_PER_USD:.6f}).",
            )
        ctx.budget_reservation = reservation

    async def settle(self, ctx: RequestContext, actual_micro_usd: int) -> None:
        """Replace the reservation with the real cost; never raises (usage is recorded
        separately, and a settle lost to an outage only errs by one estimate)."""
        reservation, ctx.budget_reservation = ctx.budget_reservation, None
        if reservation is None:
            return
        try:
            await self._ledger.settle(await self._redis(), reservation, actual_micro_usd)
        except RedisUnavailableError:
            ctx.degraded.add("budget")

    def _degrade(self, ctx: RequestContext, exc: RedisUnavailableError) -> None:
        if not self._settings.budget_fail_open:
            raise UpstreamUnavailableError(
                "Budgets cannot be checked right now; try again shortly.",
                code="budget_unavailable",
            ) from exc
        ctx.degraded.add("budget")
