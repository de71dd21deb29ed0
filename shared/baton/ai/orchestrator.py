"""The orchestrator: composes the request path and owns no policy of its own.

    auth -> validate -> route -> budget -> rate limit -> cache lookup -> dedup
         -> provider call (retry, breaker, fallback) -> cache store -> usage record

Auth happens at the entry point (it needs the raw header) and hands over the key's
record; every other step is one object with one job, injected here so each can be
replaced, switched off or tested alone. Buffered and streamed requests pass the same
steps in the same order; a stream's usage is recorded when it ends, however it ends
(completed, broken upstream, or abandoned by the client).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass

import anyio

from baton.ai.availability import Availability
from baton.ai.budget import BudgetGuard
from baton.ai.context import RequestContext
from baton.ai.fallback import ProviderInvoker
from baton.ai.observability import UsageRecorder
from baton.ai.router import AUTO, Router
from baton.catalog import cost_micro_usd
from baton.clock import Clock
from baton.config import Settings
from baton.errors import BatonError, PermissionDeniedError
from baton.kv.cache import ResponseCache
from baton.kv.deduplication import Deduplicator
from baton.kv.rate_limit import RateLimiter
from baton.providers.registry import ProviderRegistry
from baton.schema import ChatCompletion, ChatCompletionChunk
from baton.tokens import estimate_prompt_tokens, estimate_text_tokens
from baton.usage import TokenUsage, UsageRecord
from baton.validation import check_request_limits


@dataclass
class Orchestrator:
    """Runs one chat request through every step, in the design brief's order."""

    settings: Settings
    clock: Clock
    registry: ProviderRegistry
    router: Router
    availability: Availability
    budgets: BudgetGuard
    rate_limiter: RateLimiter
    cache: ResponseCache
    dedup: Deduplicator
    invoker: ProviderInvoker
    recorder: UsageRecorder

    async def _prepare(self, ctx: RequestContext) -> None:
        """Validate, route and admit: the steps before any answer."""
        check_request_limits(ctx.request, self.settings)
        # Choosing a model needs the remaining budget and the open breakers; an explicit
        # model is checked by the reservation below instead, and its chain takes over
        # from an open breaker in the invoker (one Redis round trip here, not three).
        remaining: int | None = None
        unavailable: frozenset[str] = frozenset()
        if ctx.request.model == AUTO:
            remaining, unavailable = await asyncio.gather(
                self.budgets.remaining(ctx), self.availability.unavailable(ctx)
            )
        ctx.route = self.router.route(ctx.request, remaining, unavailable)
        ctx.model = ctx.route.model
        _check_allowed(ctx)
        await self.budgets.reserve(ctx, ctx.route.estimate.cost_micro_usd)
        try:
            await self.rate_limiter.admit(ctx)
        except BaseException:
            await self.budgets.settle(ctx, 0)
            raise

    async def complete(self, ctx: RequestContext) -> ChatCompletion:
        """A buffered chat completion; ``ctx`` collects the response headers."""
        await self._prepare(ctx)
        cached = await self.cache.lookup(ctx)
        if cached is not None:
            await self._finish(ctx, TokenUsage(), status="ok")
            return cached
        try:
            result = await self.dedup.run(ctx, lambda: self.invoker.complete(ctx))
        except BatonError as exc:
            await self._finish(ctx, TokenUsage(), status="error", error_code=exc.code)
            raise
        except BaseException:
            await self._finish(ctx, TokenUsage(), status="cancelled")
            raise
        await self.cache.store(ctx, result.completion)
        await self._finish(ctx, result.tokens, status="ok")
        return result.completion

    async def stream(self, ctx: RequestContext) -> AsyncGenerator[ChatCompletionChunk, None]:
        """OpenAI chunks as the provider produces them.

        Errors before the first chunk propagate from the first ``anext`` (so the entry
        point can still answer with a status code); later ones end the iteration. The
        closing usage chunk is yielded when the caller asked for it
        (``stream_options.include_usage``). Streamed requests bypass the cache and
        deduplication until those steps learn to replay streams.
        """
        await self._prepare(ctx)
        ctx.cache_status = "bypass"
        upstream = self.invoker.stream(ctx)
        progress = _StreamProgress()
        status, error_code = "cancelled", None
        try:
            async for item in upstream:
                if isinstance(item, TokenUsage):
                    progress.tokens = item
                    continue
                progress.saw(item)
                yield item
            status = "ok"
            options = ctx.request.stream_options
            if options is not None and options.include_usage and progress.last is not None:
                yield progress.usage_chunk(self._tokens(ctx, progress))
        except BatonError as exc:
            status, error_code = "error", exc.code
            raise
        except Exception:
            status, error_code = "error", "internal_error"
            raise
        finally:
            # Shielded: a client that went away cancels this task, and the upstream
            # must still be closed and what was generated still counted.
            with anyio.CancelScope(shield=True):
                await upstream.aclose()
                await self._finish(
                    ctx, self._tokens(ctx, progress), status=status, error_code=error_code
                )

    @staticmethod
    def _tokens(ctx: RequestContext, progress: _StreamProgress) -> TokenUsage:
        """The provider's usage or, for a stream that ended before reporting it, an
        estimate from the prompt and what was streamed (so nothing goes uncounted)."""
        if progress.tokens is not None:
            return progress.tokens
        if progress.last is None:
            return TokenUsage()
        return TokenUsage(
            input_tokens=estimate_prompt_tokens(ctx.request),
            output_tokens=estimate_text_tokens(progress.text),
        )

    async def _finish(
        self,
        ctx: RequestContext,
        tokens: TokenUsage,
        *,
        status: str,
        error_code: str | None = None,
    ) -> None:
        """Settle the budget and the rate-limit reservation, and record the usage."""
        assert ctx.model is not None
        simulated = ctx.answered_by == "simulated"
        cost = 0 if simulated else cost_micro_usd(ctx.model, tokens)
        await self.budgets.settle(ctx, cost)
        await self.rate_limiter.settle(ctx, tokens)
        record = UsageRecord(
            request_id=ctx.request_id,
            tenant=ctx.tenant,
            key_id=ctx.key.key_id,
            provider=ctx.answered_by or ctx.model.provider,
            model=ctx.model.id,
            tokens=tokens,
            cost_micro_usd=cost,
            latency_ms=(self.clock.monotonic() - ctx.started_at) * 1000,
            created_at=self.clock.time(),
            status=status,
            stream=bool(ctx.request.stream),
            cache=ctx.cache_status,
            error_code=error_code,
        )
        if await self.recorder.record(record):
            ctx.degraded.add("usage")


class _StreamProgress:
    """What a stream has produced so far: enough to count it if it ends early."""

    def __init__(self) -> None:
        self.tokens: TokenUsage | None = None
        self.last: ChatCompletionChunk | None = None
        self._pieces: list[str] = []

    def saw(self, chunk: ChatCompletionChunk) -> None:
        self.last = chunk
        for choice in chunk.choices:
            delta = choice.delta
            if delta.content:
                self._pieces.append(delta.content)
            for call in delta.tool_calls or []:
                if call.function:
                    self._pieces.append(call.function.get("arguments", ""))

    @property
    def text(self) -> str:
        return "".join(self._pieces)

    def usage_chunk(self, tokens: TokenUsage) -> ChatCompletionChunk:
        """OpenAI's closing chunk: no choices, the usage of the whole stream."""
        assert self.last is not None
        return ChatCompletionChunk(
            id=self.last.id,
            created=self.last.created,
            model=self.last.model,
            choices=[],
            usage=tokens.to_openai(),
        )


def _check_allowed(ctx: RequestContext) -> None:
    """403 when the key's allow-list does not include the resolved model."""
    allowed = ctx.key.overrides.allowed_models
    assert ctx.model is not None
    if allowed is not None and ctx.model.id not in allowed:
        raise PermissionDeniedError(
            f"This API key may not use '{ctx.model.id}'; allowed: {', '.join(allowed)}.",
            param="model",
        )
