"""The provider-call step: send the request upstream within the request's deadline.

Today a request's chain is its one resolved model and it is tried once; retries
(``retry.py``), the circuit breaker and fallback chains extend :class:`ProviderInvoker`
without changing its callers. What it guarantees already: no call starts after the
deadline, an upstream that outlives the deadline ends in a 504 in OpenAI's shape (never
a platform timeout), and a stream that goes quiet for longer than the idle timeout is
failed rather than left hanging.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from baton.ai.context import RequestContext
from baton.errors import UpstreamTimeoutError
from baton.providers.base import Provider, ProviderCall, ProviderResult, StreamItem
from baton.schema import ChatCompletionRequest


class ProviderInvoker:
    """Calls the provider for a request (today: one attempt on the resolved model)."""

    def __init__(self, first_chunk_timeout_s: float, idle_timeout_s: float) -> None:
        self._first_chunk_timeout_s = first_chunk_timeout_s
        self._idle_timeout_s = idle_timeout_s

    def _call(
        self, ctx: RequestContext, provider: Provider, request: ChatCompletionRequest
    ) -> ProviderCall:
        assert ctx.model is not None
        remaining = ctx.deadline.remaining()
        if remaining <= 0:
            raise _deadline_error(ctx)
        ctx.answered_by = provider.name
        return ProviderCall(
            request=request, model=ctx.model, timeout_s=remaining, request_id=ctx.request_id
        )

    async def complete(
        self, ctx: RequestContext, provider: Provider, request: ChatCompletionRequest
    ) -> ProviderResult:
        call = self._call(ctx, provider, request)
        try:
            # The adapter's SDK timeout is the first guard; this one also bounds time
            # spent outside the HTTP exchange (connection setup, slow parsing).
            async with asyncio.timeout(call.timeout_s):
                return await provider.complete(call)
        except TimeoutError as exc:
            raise _deadline_error(ctx) from exc

    async def stream(
        self, ctx: RequestContext, provider: Provider, request: ChatCompletionRequest
    ) -> AsyncGenerator[StreamItem, None]:
        """The provider's stream, each wait bounded by the deadline and by the first-chunk
        timeout (before the first chunk) or the idle timeout (after it)."""
        call = self._call(ctx, provider, request)
        upstream = provider.stream(call)
        quiet_limit = self._first_chunk_timeout_s
        try:
            while True:
                wait = min(quiet_limit, ctx.deadline.remaining())
                try:
                    async with asyncio.timeout(wait):
                        item = await anext(upstream)
                except StopAsyncIteration:
                    return
                except TimeoutError as exc:
                    if wait < quiet_limit:
                        raise _deadline_error(ctx) from exc
                    raise UpstreamTimeoutError(
                        f"The upstream stream sent nothing for {quiet_limit:g} s.",
                        provider=ctx.answered_by,
                        code="upstream_stream_stalled",
                    ) from exc
                quiet_limit = self._idle_timeout_s
                yield item
        finally:
            close = getattr(upstream, "aclose", None)  # adapters are async generators
            if close is not None:
                await close()


def _deadline_error(ctx: RequestContext) -> UpstreamTimeoutError:
    return UpstreamTimeoutError(
        "The request did not complete before its deadline.",
        provider=ctx.answered_by,
    )
