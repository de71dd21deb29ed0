"""Rate limiting step (tiers, per-model limits, penalties).

The pipeline calls :meth:`RateLimiter.admit` after routing, and :meth:`settle` with the
tokens actually used. Until the rate-limiting issue lands, every request is admitted
and no headers are set, which is what ``BATON_RATE_LIMIT`` off will mean afterwards.
"""

from __future__ import annotations

from baton.ai.context import RequestContext
from baton.catalog import ModelInfo
from baton.usage import TokenUsage


class RateLimiter:
    """Admits requests under their tenant's limits (today: admits all)."""

    async def admit(self, ctx: RequestContext) -> None:
        """Raise ``RateLimitError`` when over a limit; set the x-ratelimit headers."""
        return None

    async def admit_model(self, ctx: RequestContext, model: ModelInfo) -> None:
        """Admit a fallback model under its own per-model limits when it is tried."""
        return None

    async def settle(self, ctx: RequestContext, tokens: TokenUsage) -> None:
        """Correct a token reservation with what the request really used."""
        return None
