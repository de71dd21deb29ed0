"""The Gemini adapter: the SDK client, pinned, and the calls that use it.

The client is built here once per container and pinned against the SDK's environment
variables (see the package docstring); each call maps the request with
:mod:`.messages` and :mod:`.request`, sends it through ``client.aio.models``, reads the
answer back with :mod:`.response`, and lets :func:`.errors.upstream_errors` translate
whatever the SDK or its transport raises.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import cast

from google import genai
from google.genai import types

from baton.providers.base import ProviderCall, ProviderResult, StreamFrame, StreamItem
from baton.providers.google.errors import NAME, upstream_errors
from baton.providers.google.messages import build_contents
from baton.providers.google.request import build_config, family_of
from baton.providers.google.response import ChunkWriter, to_completion

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/"
API_VERSION = "v1beta"


class GoogleProvider:
    """Gemini models (``google/<model>``) through ``client.aio.models``."""

    name = NAME
    supported_fields = frozenset(
        {
            "temperature",
            "top_p",
            "stop",
            "seed",
            "max_tokens",
            "max_completion_tokens",
            "tools",
            "tool_choice",
            "response_format",
            "reasoning_effort",
        }
    )

    def __init__(self, api_key: str, base_url: str | None = None) -> None:
        self._client = genai.Client(
            vertexai=False,
            api_key=api_key,
            http_options=types.HttpOptions(
                base_url=base_url or DEFAULT_BASE_URL,
                api_version=API_VERSION,
                retry_options=types.HttpRetryOptions(attempts=1),
            ),
        )

    def _prepare(
        self, call: ProviderCall
    ) -> tuple[list[types.Content], types.GenerateContentConfig]:
        system, contents = build_contents(call.request.messages, family_of(call.model.name))
        return contents, build_config(call, system)

    async def complete(self, call: ProviderCall) -> ProviderResult:
        contents, config = self._prepare(call)
        with upstream_errors():
            response = await self._client.aio.models.generate_content(
                model=call.model.name, contents=contents, config=config
            )
        return to_completion(response, call)

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamItem]:
        writer = ChunkWriter(StreamFrame(call.model.id))
        # aclosing: a consumer that stops early closes the SDK's stream at once. (The
        # SDK's own HTTP response object sits in a reference cycle, so its connection is
        # released at the next garbage collection; nothing public reaches it sooner.)
        async with aclosing(self._responses(call)) as responses:
            async for response in responses:
                for chunk in writer.read(response):
                    yield chunk
        for item in writer.finish():
            yield item

    async def _responses(
        self, call: ProviderCall
    ) -> AsyncGenerator[types.GenerateContentResponse, None]:
        """The SDK's stream with errors translated; only the SDK's steps are guarded,
        so nothing thrown into this generator by its consumer is rewritten."""
        contents, config = self._prepare(call)
        with upstream_errors():
            responses = await self._client.aio.models.generate_content_stream(
                model=call.model.name, contents=contents, config=config
            )
        sdk_stream = cast(AsyncGenerator[types.GenerateContentResponse, None], responses)
        async with aclosing(sdk_stream):
            while True:
                with upstream_errors():
                    try:
                        response = await anext(sdk_stream)
                    except StopAsyncIteration:
                        return
                yield response

    async def aclose(self) -> None:
        await self._client.aio.aclose()
        self._client.close()
