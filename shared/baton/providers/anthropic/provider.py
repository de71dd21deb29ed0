"""The Anthropic adapter around the official SDK client.

The client is built once per container with the key and base URL passed explicitly
and its own retries off: Baton's retry step owns them. Each call maps the request with
:mod:`.request`, reads the answer or the event stream back with :mod:`.response`, and
translates what the SDK raises with :func:`.errors.translate`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

import anthropic
import httpx2

from baton.providers.anthropic.errors import PROVIDER, translate
from baton.providers.anthropic.request import build_request
from baton.providers.anthropic.response import StreamTranslator, to_result
from baton.providers.base import ProviderCall, ProviderResult, StreamItem, error_from_status

# Passed explicitly when no base URL is configured, so the SDK never falls back to
# ANTHROPIC_BASE_URL or a profile on disk behind Baton's back.
DEFAULT_BASE_URL: Final = "https://api.anthropic.com"


class AnthropicProvider:
    """Anthropic's Messages API through the official SDK, its own retries off."""

    name = PROVIDER
    supported_fields = frozenset(
        {
            "stop",
            "max_tokens",
            "max_completion_tokens",
            "tools",
            "tool_choice",
            "parallel_tool_calls",
            "response_format",
            "reasoning_effort",
            "safety_identifier",
        }
    )

    def __init__(self, api_key: str, base_url: str | None = None) -> None:
        # Built once per container; Baton's retry step owns retries.
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url or DEFAULT_BASE_URL, max_retries=0
        )

    async def complete(self, call: ProviderCall) -> ProviderResult:
        params = build_request(call)
        try:
            message = await self._client.messages.create(**params, timeout=call.timeout_s)
        except anthropic.APIError as exc:
            raise translate(exc) from exc
        return to_result(message, call.model.id)

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamItem]:
        params = build_request(call)
        try:
            events = await self._client.messages.create(
                **params, stream=True, timeout=call.timeout_s
            )
        except anthropic.APIError as exc:
            raise translate(exc) from exc
        translator = StreamTranslator(call.model.id)
        async with events:
            try:
                async for event in events:
                    for chunk in translator.feed(event):
                        yield chunk
            except (anthropic.APIError, httpx2.HTTPError) as exc:
                raise translate(exc) from exc
        if not translator.finished:
            raise error_from_status(PROVIDER, None, "the stream ended before message_stop")
        yield translator.usage.normalised()

    async def aclose(self) -> None:
        await self._client.close()
