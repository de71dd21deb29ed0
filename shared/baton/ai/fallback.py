"""The provider-call step: send the request upstream within the request's deadline.

Today a request's chain is its one resolved model and it is tried once; retries
(``retry.py``), the circuit breaker and fallback chains extend :class:`ProviderInvoker`
without changing its callers. What it guarantees already: no call starts after the
deadline, and an upstream that outlives the deadline ends in a 504 in OpenAI's shape,
never a platform timeout.
"""

from __future__ import annotations

import asyncio

from baton.ai.context import RequestContext
from baton.errors import UpstreamTimeoutError
from baton.providers.base import Provider, ProviderCall, ProviderResult
from baton.schema import ChatCompletionRequest


class ProviderInvoker:
    """Calls the provider for a request (today: one attempt on the resolved model)."""

    async def complete(
        self, ctx: RequestContext, provider: Provider, request: ChatCompletionRequest
    ) -> ProviderResult:
        assert ctx.model is not None
        remaining = ctx.deadline.remaining()
        if remaining <= 0:
            raise _deadline_error(ctx)
        call = ProviderCall(
            request=request, model=ctx.model, timeout_s=remaining, request_id=ctx.request_id
        )
        ctx.answered_by = provider.name
        try:
            # The adapter's SDK timeout is the first guard; this one also bounds time
            # spent outside the HTTP exchange (connection setup, slow parsing).
            return await asyncio.wait_for(provider.complete(call), timeout=remaining)
        except TimeoutError as exc:
            raise _deadline_error(ctx) from exc


def _deadline_error(ctx: RequestContext) -> UpstreamTimeoutError:
    return UpstreamTimeoutError(
        "The request did not complete before its deadline.",
        provider=ctx.answered_by,
    )
