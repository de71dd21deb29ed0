"""Response cache step (exact and semantic).

The pipeline asks :meth:`ResponseCache.lookup` before deduplication and the upstream
call, and hands every fresh answer to :meth:`store`. Until the caching issue lands it
never answers, and every response says ``x-baton-cache: bypass``.
"""

from __future__ import annotations

from baton.ai.context import RequestContext
from baton.schema import ChatCompletion


class ResponseCache:
    """Looks answers up and stores them (today: a cache that is switched off)."""

    async def lookup(self, ctx: RequestContext) -> ChatCompletion | None:
        ctx.cache_status = "bypass"
        return None

    async def store(self, ctx: RequestContext, completion: ChatCompletion) -> None:
        return None
