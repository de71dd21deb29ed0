"""The provider fakes' fixtures, and what the adapter tests share.

Each adapter test file (``tests/integration/test_*_adapter.py``) drives one adapter
through its real SDK against its provider's fake. What does not depend on the provider
lives here once: the fakes' fixtures (one server per test session and xdist worker,
clean for every test), building a :class:`ProviderCall` from request fields, validating
every completion and chunk as it goes on the wire (``to_wire()``) against OpenAI's
published schemas, collecting a stream, joining streamed text and tool calls as an
OpenAI client does, and the failures every adapter must report alike.

This is a plugin module (``tests/conftest.py`` loads it) rather than a plain helper
module so that pytest rewrites its asserts and a failing check shows its values.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from baton.catalog import load_catalog
from baton.errors import (
    InvalidRequestError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from baton.providers.base import Provider, ProviderCall
from baton.schema import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest
from baton.usage import TokenUsage
from tests.fakes.anthropic_fake import AnthropicFake
from tests.fakes.google_fake import GoogleFake
from tests.fakes.openai_fake import OpenAIFake
from tests.fakes.server import FakeServer, Fault
from tests.spec import assert_valid

FakeT = TypeVar("FakeT", bound=FakeServer)
ErrorT = TypeVar("ErrorT", bound=BaseException)

WEATHER_PARAMETERS = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
    "required": ["city"],
}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": WEATHER_PARAMETERS,
    },
}


# --- the fakes ----------------------------------------------------------------------------


def _fake_fixtures(provider: str, fake_class: type[FakeT]) -> tuple[Any, Any]:
    """``<provider>_fake_server``, started once per session, and ``<provider>_fake``, the
    same server with no queued faults, scripts or recorded requests around each test."""
    server_name = f"{provider}_fake_server"

    @pytest.fixture(scope="session", name=server_name)
    def server() -> Iterator[FakeT]:
        """The provider's fake API on a loopback port, for the whole session."""
        fake = fake_class()
        fake.start()
        yield fake
        fake.stop()

    @pytest.fixture(name=f"{provider}_fake")
    def clean(request: pytest.FixtureRequest) -> Iterator[FakeT]:
        """The session's fake with no queued faults, scripts or recorded requests."""
        fake: FakeT = request.getfixturevalue(server_name)
        fake.reset()
        yield fake
        fake.reset()

    return server, clean


openai_fake_server, openai_fake = _fake_fixtures("openai", OpenAIFake)
anthropic_fake_server, anthropic_fake = _fake_fixtures("anthropic", AnthropicFake)
google_fake_server, google_fake = _fake_fixtures("google", GoogleFake)


# --- calling an adapter -------------------------------------------------------------------


def provider_call(model_id: str, timeout_s: float = 10.0, **fields: Any) -> ProviderCall:
    """A call for the catalog model ``model_id``; the request says "hello there" unless
    ``messages`` is given."""
    fields.setdefault("messages", [{"role": "user", "content": "hello there"}])
    request = ChatCompletionRequest.model_validate({"model": model_id, **fields})
    return ProviderCall(request=request, model=load_catalog().get(model_id), timeout_s=timeout_s)


async def complete(provider: Provider, call: ProviderCall) -> ChatCompletion:
    """The adapter's complete answer, validated against OpenAI's schema."""
    result = await provider.complete(call)
    assert_valid("CreateChatCompletionResponse", result.completion.to_wire())
    return result.completion


async def stream(
    provider: Provider, call: ProviderCall, into: list[ChatCompletionChunk] | None = None
) -> tuple[list[ChatCompletionChunk], list[TokenUsage]]:
    """Every chunk (validated) and every usage item, in order; ``into`` sees chunks
    as they arrive, so a test can inspect what came before an error."""
    chunks: list[ChatCompletionChunk] = [] if into is None else into
    usages: list[TokenUsage] = []
    async for item in provider.stream(call):
        if isinstance(item, TokenUsage):
            usages.append(item)
            continue
        assert not usages, "usage must come last"
        assert_valid("CreateChatCompletionStreamResponse", item.to_wire())
        chunks.append(item)
    return chunks, usages


def streamed_text(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks)


def streamed_tool_calls(chunks: list[ChatCompletionChunk]) -> dict[int, dict[str, str]]:
    """Tool-call deltas joined per index, as an OpenAI client joins them."""
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for delta in chunk.choices[0].delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            call["id"] += delta.id or ""
            function = delta.function or {}
            call["name"] += function.get("name", "")
            call["arguments"] += function.get("arguments", "")
    return calls


def sent(fake: FakeServer) -> dict[str, Any]:
    """The body of the one request the fake received."""
    assert len(fake.requests) == 1, "the SDK must make exactly one HTTP call"
    return fake.requests[0].body


# --- failures every adapter reports alike -------------------------------------------------
# Each check injects one fault into the adapter's fake, makes one call and returns the
# error, so a test can add what is particular to its provider.


async def check_http_error(
    provider: Provider,
    fake: FakeServer,
    call: ProviderCall,
    fault: Fault,
    error: type[ErrorT],
    status: int,
) -> ErrorT:
    """An HTTP error status becomes exactly ``error`` with Baton's ``status``."""
    fake.inject(fault)
    with pytest.raises(error) as raised:
        await provider.complete(call)

    assert type(raised.value) is error
    assert getattr(raised.value, "status", None) == status
    assert isinstance(raised.value.__cause__, Exception)  # translated with raise ... from
    assert len(fake.requests) == 1, "SDK retries must be off"
    return raised.value


async def check_rate_limit_carries_retry_after(
    provider: Provider, fake: FakeServer, call: ProviderCall
) -> None:
    fake.inject(Fault(status=429, retry_after=7))
    with pytest.raises(UpstreamUnavailableError) as raised:
        await provider.complete(call)

    assert raised.value.retry_after == 7.0
    assert raised.value.upstream_status == 429
    assert len(fake.requests) == 1, "SDK retries must be off"


async def check_context_length_error_is_flagged(
    provider: Provider, fake: FakeServer, call: ProviderCall, message: str
) -> None:
    """A 400 saying the prompt is too long (in ``message``, the provider's words)."""
    fake.inject(Fault(status=400, message=message))
    with pytest.raises(InvalidRequestError) as raised:
        await provider.complete(call)

    assert raised.value.code == "context_length_exceeded"
    assert raised.value.param == "messages"


async def check_error_before_a_stream_starts(
    provider: Provider, fake: FakeServer, call: ProviderCall
) -> None:
    fake.inject(Fault(status=429, retry_after=3))
    chunks: list[ChatCompletionChunk] = []
    with pytest.raises(UpstreamUnavailableError) as raised:
        await stream(provider, call, into=chunks)

    assert chunks == []
    assert raised.value.retry_after == 3.0
    assert len(fake.requests) == 1, "SDK retries must be off"


async def check_slow_response_times_out(
    provider: Provider, fake: FakeServer, call: ProviderCall
) -> None:
    """``call`` must have a timeout well under the fake's 3 s delay."""
    fake.inject(Fault(delay_s=3))
    with pytest.raises(UpstreamTimeoutError) as raised:
        await provider.complete(call)

    assert raised.value.status == 504
    assert len(fake.requests) == 1, "SDK retries must be off"


async def check_slow_chunks_time_out(
    provider: Provider, fake: FakeServer, call: ProviderCall
) -> list[ChatCompletionChunk]:
    """The chunks that came in time before the wait for the next one timed out;
    ``call`` must have a timeout well under the fake's 3 s between chunks."""
    fake.inject(Fault(chunk_delay_s=3))
    chunks: list[ChatCompletionChunk] = []
    with pytest.raises(UpstreamTimeoutError):
        await stream(provider, call, into=chunks)

    assert len(fake.requests) == 1
    return chunks


async def check_unreachable_upstream_is_unavailable(
    adapter_for: Callable[[str], Provider], call: ProviderCall
) -> None:
    """``adapter_for(base_url)`` builds the adapter; nothing listens at the URL."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    adapter = adapter_for(f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(UpstreamUnavailableError) as raised:
            await adapter.complete(call)
    finally:
        await adapter.aclose()

    assert raised.value.upstream_status is None
