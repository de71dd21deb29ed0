"""The provider-call step: retries, the shared circuit breaker, and fallback chains.

For one request the invoker walks its chain (:mod:`baton.ai.chains`: the routed model,
then its fallbacks) and, for each model:

1. asks the model's circuit breaker (:mod:`baton.kv.breaker`, shared by every instance
   through Redis) for a permit; an open breaker costs no upstream time, the next model
   is tried at once;
2. admits the model under its own per-model limits (a fallback model is admitted when
   it is tried; the routed one was admitted with the request);
3. calls it with retries (:mod:`baton.ai.retry`), each attempt bounded by the model's
   timeout and the request's deadline, each outcome fed to the breaker and to the
   passive health windows (:mod:`baton.kv.health`) in one concurrent round trip;
4. moves on when retries are exhausted or the error says another model may succeed;
   a context-length error moves to a model with a larger context window.

The caller's own errors (a 400 the provider raised, a content-policy refusal) end the
walk and are answered as they are. ``x-baton-attempts`` lists the attempts that failed
before the answer. Streams fail over the same way until their first chunk; after it, an
upstream failure ends the stream with an error event (an incomplete answer never passes
for a complete one).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from baton.ai.chains import Resilience
from baton.ai.context import RequestContext
from baton.ai.params import fit_to_provider
from baton.ai.retry import Verdict, call_with_retries, verdict
from baton.catalog import Catalog, ModelInfo
from baton.clock import Clock
from baton.config import Settings
from baton.errors import BatonError, UpstreamError, UpstreamTimeoutError, UpstreamUnavailableError
from baton.kv import health
from baton.kv.breaker import CircuitBreaker, Permit
from baton.kv.exceptions import RedisUnavailableError
from baton.kv.scripts import AsyncClient
from baton.providers.base import Provider, ProviderCall, ProviderResult, StreamItem
from baton.providers.registry import ProviderRegistry
from baton.schema import ChatCompletionRequest


class BreakerOpenError(UpstreamUnavailableError):
    """A model's breaker refused the call; no upstream time was spent."""

    default_code = "breaker_open"


@dataclass
class _Step:
    """One model of the chain, ready to call."""

    model: ModelInfo
    provider: Provider
    request: ChatCompletionRequest
    dropped: list[str]


T = TypeVar("T")
AdmitModel = Callable[[RequestContext, ModelInfo], Awaitable[None]]


class ProviderInvoker:
    """Calls providers for a request along its fallback chain."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        catalog: Catalog,
        registry: ProviderRegistry,
        resilience: Resilience,
        breaker: CircuitBreaker,
        redis: Callable[[], Awaitable[AsyncClient]],
        admit_model: AdmitModel,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._catalog = catalog
        self._registry = registry
        self._resilience = resilience
        self._breaker = breaker
        self._redis = redis
        self._admit_model = admit_model
        self._first_chunk_timeout_s = settings.stream_first_chunk_timeout_s
        self._idle_timeout_s = settings.stream_idle_timeout_s

    # --- buffered --------------------------------------------------------------------

    async def complete(self, ctx: RequestContext) -> ProviderResult:
        """The first answer along the chain; the last error when every model failed."""

        async def attempt(step: _Step, limit_s: float) -> ProviderResult:
            call = ProviderCall(step.request, step.model, limit_s, ctx.request_id)
            async with asyncio.timeout(limit_s):
                return await step.provider.complete(call)

        result: ProviderResult = await self._walk(ctx, attempt)
        return result

    # --- streamed ----------------------------------------------------------------------

    async def stream(self, ctx: RequestContext) -> AsyncGenerator[StreamItem, None]:
        """Chunks of the first model that produced one; failover happens before it."""

        async def open_stream(
            step: _Step, limit_s: float
        ) -> tuple[AsyncIterator[StreamItem], StreamItem, float]:
            opened = self._clock.monotonic()
            call = ProviderCall(step.request, step.model, limit_s, ctx.request_id)
            upstream = step.provider.stream(call)
            try:
                async with asyncio.timeout(min(limit_s, self._first_chunk_timeout_s)):
                    first = await anext(upstream)
            except TimeoutError as exc:
                await _close(upstream)
                raise UpstreamTimeoutError(
                    "The upstream stream sent nothing before its first-chunk timeout.",
                    provider=step.provider.name,
                    code="upstream_stream_stalled",
                ) from exc
            except BaseException:
                await _close(upstream)
                raise
            return upstream, first, opened

        # The stream that answers is counted in the health window once, when it ends
        # (it may still fail after its first chunk); failed openings count per attempt.
        upstream, first, started = await self._walk(ctx, open_stream, count_success=False)
        assert ctx.model is not None
        target = ctx.model.id
        ok = False
        try:
            yield first
            while True:
                wait = min(self._idle_timeout_s, ctx.deadline.remaining())
                try:
                    async with asyncio.timeout(wait):
                        item = await anext(upstream)
                except StopAsyncIteration:
                    ok = True
                    return
                except TimeoutError as exc:
                    raise _quiet_error(
                        ctx, wait < self._idle_timeout_s, self._idle_timeout_s
                    ) from exc
                yield item
        except UpstreamError:
            raise
        except BatonError:
            ok = True  # not the provider's fault
            raise
        finally:
            await _close(upstream)
            latency = (self._clock.monotonic() - started) * 1000
            await self._health(ctx, target, ok=ok, latency_ms=latency)

    # --- the chain walk ----------------------------------------------------------------

    async def _walk(
        self,
        ctx: RequestContext,
        attempt: Callable[[_Step, float], Awaitable[T]],
        *,
        count_success: bool = True,
    ) -> T:
        assert ctx.model is not None
        chain = self._resilience.chain(ctx.request, ctx.model, ctx.key, self._registry.servable)
        last_error: BatonError | None = None
        tried_context_window: int | None = None
        for index, model in enumerate(chain):
            if tried_context_window is not None and model.context_window <= tried_context_window:
                continue  # a context-length error: only larger windows can help
            if index > 0:
                await self._admit_model(ctx, model)
            step = self._step(ctx, model)
            try:
                value = await call_with_retries(
                    partial(self._guarded, ctx, step, attempt, count_success),
                    self._resilience.policy(model),
                    ctx.deadline,
                    self._clock,
                    time_scale=self._settings.time_scale,
                )
            except BatonError as exc:
                last_error = exc
                if verdict(exc) is Verdict.GIVE_UP:
                    raise
                if exc.code == "context_length_exceeded":
                    tried_context_window = model.context_window
                continue
            ctx.model, ctx.answered_by = model, step.provider.name
            ctx.dropped_params = step.dropped
            return value
        if last_error is None:  # pragma: no cover - the chain always holds its first model
            raise UpstreamUnavailableError("No model could be tried.")
        if isinstance(last_error, BreakerOpenError):
            raise UpstreamUnavailableError(
                "Every model for this request is failing right now (circuit breakers "
                "open); try again shortly.",
                code="all_models_unavailable",
            ) from last_error
        raise last_error

    def _step(self, ctx: RequestContext, model: ModelInfo) -> _Step:
        provider = self._registry.for_model(model)
        request, dropped = fit_to_provider(
            ctx.request, provider, self._settings.drop_unsupported_params
        )
        return _Step(model, provider, request, dropped)

    async def _guarded(
        self,
        ctx: RequestContext,
        step: _Step,
        attempt: Callable[[_Step, float], Awaitable[T]],
        count_success: bool,
        limit_s: float,
    ) -> T:
        """One attempt: breaker permit, the call, and its outcome recorded (a success in
        the health window only when ``count_success``: a stream counts when it ends)."""
        target = step.model.id
        permit = await self._permit(ctx, target)
        if permit is not None and not permit.allowed:
            ctx.failed_attempts.append(f"{target}:breaker_open")
            raise BreakerOpenError(f"{target}: circuit breaker open", provider=step.provider.name)
        started = self._clock.monotonic()
        try:
            value = await attempt(step, limit_s)
        except TimeoutError as exc:
            error: BatonError = UpstreamTimeoutError(
                f"{target} did not answer within {limit_s:.1f} s", provider=step.provider.name
            )
            await self._outcome(ctx, target, permit, started, ok=False, error=error)
            raise error from exc
        except BatonError as exc:
            upstream_fault = isinstance(exc, UpstreamError)
            await self._outcome(ctx, target, permit, started, ok=not upstream_fault, error=exc)
            raise
        await self._outcome(
            ctx, target, permit, started, ok=True, error=None, health_window=count_success
        )
        return value

    async def _permit(self, ctx: RequestContext, target: str) -> Permit | None:
        """The breaker's permit; None when Redis is down (fail open, marked degraded)."""
        try:
            return await self._breaker.allow(await self._redis(), target)
        except RedisUnavailableError:
            ctx.degraded.add("breaker")
            return None

    async def _outcome(
        self,
        ctx: RequestContext,
        target: str,
        permit: Permit | None,
        started: float,
        *,
        ok: bool,
        error: BatonError | None,
        health_window: bool = True,
    ) -> None:
        if error is not None:
            status = getattr(error, "upstream_status", None) or error.code or "error"
            ctx.failed_attempts.append(f"{target}:{status}")
        latency = (self._clock.monotonic() - started) * 1000
        jobs: list[Awaitable[object]] = []
        if health_window:
            jobs.append(self._health(ctx, target, ok=ok, latency_ms=latency))
        if permit is not None:
            jobs.append(self._record(ctx, target, permit, ok))
        await asyncio.gather(*jobs)

    async def _record(self, ctx: RequestContext, target: str, permit: Permit, ok: bool) -> None:
        try:
            await self._breaker.record(await self._redis(), target, success=ok, permit=permit)
        except RedisUnavailableError:
            ctx.degraded.add("breaker")

    async def _health(
        self, ctx: RequestContext, target: str, *, ok: bool, latency_ms: float
    ) -> None:
        try:
            await health.record_call(
                await self._redis(), target, ok=ok, latency_ms=latency_ms, clock=self._clock
            )
        except RedisUnavailableError:
            ctx.degraded.add("health")


def _quiet_error(ctx: RequestContext, deadline: bool, idle_s: float) -> UpstreamTimeoutError:
    if deadline:
        return UpstreamTimeoutError(
            "The request did not complete before its deadline.", provider=ctx.answered_by
        )
    return UpstreamTimeoutError(
        f"The upstream stream sent nothing for {idle_s:g} s.",
        provider=ctx.answered_by,
        code="upstream_stream_stalled",
    )


async def _close(upstream: AsyncIterator[StreamItem]) -> None:
    close = getattr(upstream, "aclose", None)  # adapters are async generators
    if close is not None:
        await close()
