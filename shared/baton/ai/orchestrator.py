"""The orchestrator: composes the request path and owns no policy of its own.

    auth -> validate -> route -> rate limit -> cache lookup -> dedup
         -> provider call (retry, breaker, fallback) -> cache store -> usage record

Auth happens at the entry point (it needs the raw header) and hands over the key's
record; every other step is one object with one job, injected here so each can be
replaced, switched off or tested alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from baton.ai.context import RequestContext
from baton.ai.fallback import ProviderInvoker
from baton.ai.observability import UsageRecorder
from baton.ai.params import fit_to_provider
from baton.ai.router import Router
from baton.catalog import cost_micro_usd
from baton.clock import Clock
from baton.config import Settings
from baton.errors import BatonError, PermissionDeniedError
from baton.kv.cache import ResponseCache
from baton.kv.deduplication import Deduplicator
from baton.kv.rate_limit import RateLimiter
from baton.providers.registry import ProviderRegistry
from baton.schema import ChatCompletion
from baton.usage import TokenUsage, UsageRecord
from baton.validation import check_request_limits


@dataclass
class Orchestrator:
    """Runs one chat request through every step, in the design brief's order."""

    settings: Settings
    clock: Clock
    registry: ProviderRegistry
    router: Router
    rate_limiter: RateLimiter
    cache: ResponseCache
    dedup: Deduplicator
    invoker: ProviderInvoker
    recorder: UsageRecorder

    async def complete(self, ctx: RequestContext) -> ChatCompletion:
        """A buffered chat completion; ``ctx`` collects the response headers."""
        check_request_limits(ctx.request, self.settings)
        ctx.model = self.router.resolve(ctx.request)
        _check_allowed(ctx)
        provider = self.registry.for_model(ctx.model)
        request, ctx.dropped_params = fit_to_provider(
            ctx.request, provider, self.settings.drop_unsupported_params
        )
        await self.rate_limiter.admit(ctx)

        cached = await self.cache.lookup(ctx)
        if cached is not None:
            await self._record(ctx, TokenUsage(), status="ok")
            return cached

        try:
            result = await self.dedup.run(
                ctx, lambda: self.invoker.complete(ctx, provider, request)
            )
        except BatonError as exc:
            await self._record(ctx, TokenUsage(), status="error", error_code=exc.code)
            raise
        await self.cache.store(ctx, result.completion)
        await self.rate_limiter.settle(ctx, result.tokens)
        await self._record(ctx, result.tokens, status="ok")
        return result.completion

    async def _record(
        self, ctx: RequestContext, tokens: TokenUsage, *, status: str, error_code: str | None = None
    ) -> None:
        assert ctx.model is not None
        record = UsageRecord(
            request_id=ctx.request_id,
            tenant=ctx.tenant,
            key_id=ctx.key.key_id,
            provider=ctx.answered_by or ctx.model.provider,
            model=ctx.model.id,
            tokens=tokens,
            cost_micro_usd=cost_micro_usd(ctx.model, tokens)
            if ctx.answered_by != "simulated"
            else 0,
            latency_ms=(self.clock.monotonic() - ctx.started_at) * 1000,
            created_at=self.clock.time(),
            status=status,
            stream=bool(ctx.request.stream),
            cache=ctx.cache_status,
            error_code=error_code,
        )
        if await self.recorder.record(record):
            ctx.degraded.add("usage")


def _check_allowed(ctx: RequestContext) -> None:
    """403 when the key's allow-list does not include the resolved model."""
    allowed = ctx.key.overrides.allowed_models
    assert ctx.model is not None
    if allowed is not None and ctx.model.id not in allowed:
        raise PermissionDeniedError(
            f"This API key may not use '{ctx.model.id}'; allowed: {', '.join(allowed)}.",
            param="model",
        )
