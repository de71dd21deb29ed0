"""End to end: the official OpenAI SDK streams from a real ``baton serve`` process.

The server's OpenAI models are answered by the fake OpenAI API (a real loopback server
in this test process), so what is proven is the whole path: SDK -> HTTP -> uvicorn ->
Baton -> openai SDK -> HTTP -> fake, and back, chunk by chunk. Timestamps taken in this
process order what the client received against what the fake sent; no duration is
asserted.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import openai
import pytest
import redis
from openai.types.chat import ChatCompletionChunk

from baton.kv import keys
from baton.kv.usage_counters import UsageCounters, parse_usage
from tests.fakes.openai_fake import Answer, OpenAIFake
from tests.fakes.server import Fault
from tests.plugins.local_server import DEV_KEY, start_server
from tests.spec import assert_valid

MESSAGES: list[Any] = [{"role": "user", "content": "Stream a greeting to the Baton team"}]
MODELS = ["simulated/echo", "openai/gpt-5.4-mini"]
# Slow enough to tell "as it arrives" from "all at once", short enough for a fast test.
SLOW = "one two three four five six seven eight nine ten"
CHUNK_DELAY_S = 0.15


@dataclass(frozen=True)
class StreamingServer:
    url: str
    user: str
    redis_url: str

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=DEV_KEY, max_retries=0)

    def async_client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=f"{self.url}/v1", api_key=DEV_KEY, max_retries=0)

    def usage_today(self) -> UsageCounters:
        """The server's dev user's counters for today, read straight from Redis."""
        day = datetime.now(UTC).date()
        with redis.Redis.from_url(self.redis_url) as client:
            fields = client.hgetall(keys.usage_key(self.user, "day", day))
        return parse_usage(fields, self.user, "day", day).totals


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, openai_fake_server: OpenAIFake
) -> Iterator[StreamingServer]:
    """``baton serve`` with OpenAI pointed at the fake; its own user, so counters are ours."""
    user = f"e2e-stream-{uuid.uuid4().hex[:12]}"
    env = {
        "REDIS_URL": redis_url,
        "BATON_DEV_API_KEY": DEV_KEY,
        "BATON_DEV_USER": user,
        "OPENAI_API_KEY": "sk-fake-e2e-streaming",
        "OPENAI_BASE_URL": openai_fake_server.base_url,
    }
    process: subprocess.Popen[bytes]
    process, url = start_server(tmp_path_factory.mktemp("baton-streaming"), env)
    try:
        yield StreamingServer(url=url, user=user, redis_url=redis_url)
    finally:
        process.terminate()
        process.wait(timeout=10)


def checked(chunk: ChatCompletionChunk) -> ChatCompletionChunk:
    """The chunk, after checking what the SDK parsed against OpenAI's schema."""
    assert_valid("CreateChatCompletionStreamResponse", chunk.to_dict())
    return chunk


def content(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(c.delta.content or "" for chunk in chunks for c in chunk.choices)


def buffered_content(server: StreamingServer, model: str) -> str:
    with server.client() as client:
        completion = client.chat.completions.create(model=model, messages=MESSAGES)
    text = completion.choices[0].message.content
    assert text, completion
    return text


def wait_for(condition: Callable[[], bool], within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# --- the SDK streams -------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_sync_sdk_stream_equals_the_buffered_answer(
    server: StreamingServer, openai_fake: OpenAIFake, model: str
) -> None:
    expected = buffered_content(server, model)
    with server.client() as client:
        stream = client.chat.completions.create(
            model=model, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        with stream:
            chunks = [checked(chunk) for chunk in stream]
    *answer, usage = chunks
    assert content(answer) == expected
    assert len(answer) > 2, "the answer must arrive in pieces"
    assert answer[0].choices[0].delta.role == "assistant"
    assert answer[-1].choices[0].finish_reason == "stop"
    assert {chunk.model for chunk in chunks} == {model}
    assert usage.choices == [] and usage.usage is not None
    assert usage.usage.prompt_tokens > 0 and usage.usage.completion_tokens > 0
    # The fake answers only the OpenAI model, once buffered and once streamed.
    assert len(openai_fake.requests) == (2 if model.startswith("openai/") else 0)


@pytest.mark.anyio
@pytest.mark.parametrize("model", MODELS)
async def test_async_sdk_stream_equals_the_buffered_answer(
    server: StreamingServer, openai_fake: OpenAIFake, model: str
) -> None:
    expected = buffered_content(server, model)
    async with server.async_client() as client:
        stream = await client.chat.completions.create(model=model, messages=MESSAGES, stream=True)
        async with stream:
            chunks = [checked(chunk) async for chunk in stream]
    assert content(chunks) == expected
    assert all(chunk.usage is None and chunk.choices for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


# --- chunks flow through as they arrive ----------------------------------------------------


def test_the_first_chunk_arrives_before_the_upstream_sent_its_last(
    server: StreamingServer, openai_fake: OpenAIFake
) -> None:
    openai_fake.script(Answer(text=SLOW))
    openai_fake.inject(Fault(chunk_delay_s=CHUNK_DELAY_S))
    first_at: float | None = None
    chunks = []
    with server.client() as client:
        stream = client.chat.completions.create(
            model="openai/gpt-5.4-mini", messages=MESSAGES, stream=True
        )
        with stream:
            for chunk in stream:
                first_at = first_at or time.monotonic()
                chunks.append(checked(chunk))
    assert content(chunks) == SLOW  # the whole answer came, in the end
    assert first_at is not None and openai_fake.last_chunk_sent_at is not None
    # Buffering anywhere on the way would deliver the first chunk after the last was sent.
    assert first_at < openai_fake.last_chunk_sent_at


# --- a client that goes away ----------------------------------------------------------------


def test_a_client_that_leaves_early_hangs_up_upstream_and_is_still_counted(
    server: StreamingServer, openai_fake: OpenAIFake
) -> None:
    before = server.usage_today()
    openai_fake.script(Answer(text=f"{SLOW} {SLOW} {SLOW}"))
    openai_fake.inject(Fault(chunk_delay_s=0.3))
    received = []
    with server.client() as client:
        stream = client.chat.completions.create(
            model="openai/gpt-5.4-mini", messages=MESSAGES, stream=True
        )
        with stream:
            for chunk in stream:
                received.append(checked(chunk))
                if content(received):  # the first words arrived: leave
                    break
    assert content(received) == "one "

    assert wait_for(lambda: openai_fake.disconnects == 1), "upstream still streaming"
    assert wait_for(lambda: server.usage_today().requests == before.requests + 1)
    after = server.usage_today()
    # A cancelled stream is a request, not an error, and what was generated is counted.
    assert after.errors == before.errors
    assert after.prompt_tokens > before.prompt_tokens
    assert after.completion_tokens > before.completion_tokens
