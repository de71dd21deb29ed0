"""Server-Sent Events exactly as OpenAI sends them (design decision 4).

``data: {chunk}`` lines, ``data: [DONE]`` at the end; an error after the stream started
is one ``data: {"error": ...}`` line and no ``[DONE]``, so a client can never take an
incomplete answer for a complete one. While the model thinks before its first token, a
comment line (``: keep-alive``) goes out every ``stream_keepalive_s`` so proxies and
clients keep the connection open.

The HTTP status is decided by the first chunk: Baton waits for it (up to one keep-alive
interval) before sending headers, so a request that fails before producing anything
still gets its proper status code and a JSON error body.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import anyio
from starlette.responses import StreamingResponse

from baton.api.errors import error_response_parts
from baton.schema import ChatCompletionChunk

KEEPALIVE = b": keep-alive\n\n"
DONE = b"data: [DONE]\n\n"
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


async def open_stream(
    chunks: AsyncGenerator[ChatCompletionChunk, None],
    headers: Callable[[], dict[str, str]],
    request_id: str,
    keepalive_s: float,
) -> StreamingResponse:
    """Start ``chunks`` and answer with the SSE response once the status is known.

    Raises whatever the stream raises before its first chunk, if that happens within
    ``keepalive_s``, so the caller answers it as an ordinary error. ``headers`` is read
    after that wait, when the stream has resolved its model and provider.
    """
    first = asyncio.ensure_future(anext(chunks))
    try:
        await asyncio.wait({first}, timeout=keepalive_s)
    except asyncio.CancelledError:
        first.cancel()
        raise
    failure = first.exception() if first.done() else None
    if failure is not None and not isinstance(failure, StopAsyncIteration):
        await chunks.aclose()
        raise failure
    return StreamingResponse(
        _body(first, chunks, request_id, keepalive_s),
        media_type="text/event-stream",
        headers={**headers(), **SSE_HEADERS},
    )


async def _body(
    first: asyncio.Future[ChatCompletionChunk],
    chunks: AsyncGenerator[ChatCompletionChunk, None],
    request_id: str,
    keepalive_s: float,
) -> AsyncIterator[bytes]:
    try:
        while not first.done():
            yield KEEPALIVE
            await asyncio.wait({first}, timeout=keepalive_s)
        yield _event(first.result().to_wire())
        async for chunk in chunks:
            yield _event(chunk.to_wire())
        yield DONE
    except StopAsyncIteration:
        yield DONE  # a stream with no chunks at all
    except Exception as exc:  # after the status line, errors travel as an event
        _, body, _ = error_response_parts(exc, request_id)
        yield _event(body)
    finally:
        first.cancel()
        with anyio.CancelScope(shield=True):
            await chunks.aclose()
