"""Monthly spending budgets, counted in Redis in integer micro-dollars.

One counter per tenant and month holds the spend of finished requests plus the
reservations of running ones. A request reserves its estimated cost before the upstream
call (``budget_reserve.lua``: check and reserve in one atomic step) and settles the
difference when it ends (one ``INCRBY``; a failed request releases its whole
reservation). So a hundred concurrent instances cannot overshoot a budget by more than
what already-admitted requests cost beyond their estimates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from baton.clock import Clock
from baton.kv import keys
from baton.kv.exceptions import REDIS_DOWN_ERRORS, RedisUnavailableError
from baton.kv.scripts import AsyncClient, LuaScript, SyncClient

RESERVE = LuaScript("budget_reserve")


@dataclass(frozen=True)
class Reservation:
    """The outcome of a reservation attempt; settled against the same month's counter
    even when the request ends after midnight on the month's last day."""

    admitted: bool
    used_micro_usd: int  # the counter after reserving (or as found, when refused)
    estimate_micro_usd: int
    key: str


class BudgetLedger:
    """Reads, reserves and settles a tenant's monthly spend."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def _key(self, tenant: str) -> str:
        return keys.budget_key(tenant, datetime.fromtimestamp(self._clock.time(), UTC).date())

    async def used(self, client: AsyncClient, tenant: str) -> int:
        """Micro-dollars spent and reserved this month."""
        try:
            value = await client.get(self._key(tenant))
        except REDIS_DOWN_ERRORS as exc:
            raise RedisUnavailableError("Redis did not return the budget") from exc
        return int(value or 0)

    def used_sync(self, client: SyncClient, tenant: str) -> int:
        """The same, for the synchronous HTTP API handlers."""
        try:
            value = client.get(self._key(tenant))
        except REDIS_DOWN_ERRORS as exc:
            raise RedisUnavailableError("Redis did not return the budget") from exc
        return int(value or 0)

    async def reserve(
        self, client: AsyncClient, tenant: str, budget_micro_usd: int, estimate_micro_usd: int
    ) -> Reservation:
        key = self._key(tenant)
        estimate = max(0, estimate_micro_usd)
        try:
            admitted, used = await RESERVE.run_async(client, [key], [budget_micro_usd, estimate])
        except REDIS_DOWN_ERRORS as exc:
            raise RedisUnavailableError("Redis did not reserve the budget") from exc
        return Reservation(bool(admitted), int(used), estimate, key)

    @staticmethod
    async def settle(client: AsyncClient, reservation: Reservation, actual_micro_usd: int) -> None:
        """Replace an admitted reservation by the actual cost (0 releases it all)."""
        delta = actual_micro_usd - reservation.estimate_micro_usd
        if not reservation.admitted or delta == 0:
            return
        try:
            await client.incrby(reservation.key, delta)
        except REDIS_DOWN_ERRORS as exc:
            raise RedisUnavailableError("Redis did not settle the budget") from exc
