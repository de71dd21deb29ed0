"""The OpenAI adapter through the real ``openai`` SDK, against the fake OpenAI API.

Every completion and chunk the adapter produces is validated against OpenAI's published
schemas; every request it sends is read back from the fake.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from baton.errors import (
    InvalidRequestError,
    UpstreamError,
    UpstreamUnavailableError,
)
from baton.providers.base import ProviderCall
from baton.providers.openai import OpenAIProvider, retry_after_seconds
from baton.schema import ChatCompletionChunk
from baton.usage import TokenUsage
from tests.fakes.openai_fake import CONTEXT_LENGTH_MESSAGES, Answer, OpenAIFake, ScriptedToolCall
from tests.fakes.server import Fault
from tests.plugins.adapters import (
    WEATHER_TOOL,
    check_context_length_error_is_flagged,
    check_error_before_a_stream_starts,
    check_http_error,
    check_rate_limit_carries_retry_after,
    check_slow_chunks_time_out,
    check_slow_response_times_out,
    complete,
    provider_call,
    sent,
    stream,
    streamed_text,
    streamed_tool_calls,
)

pytestmark = pytest.mark.anyio

API_KEY = "sk-test-baton-openai"
REASONING_MODEL = "openai/gpt-5.4-mini"
PLAIN_MODEL = "openai/gpt-4.1"


@pytest.fixture
async def provider(openai_fake: OpenAIFake, anyio_backend: str) -> AsyncIterator[OpenAIProvider]:
    adapter = OpenAIProvider(api_key=API_KEY, base_url=openai_fake.base_url)
    yield adapter
    await adapter.aclose()


def make_call(model_id: str = PLAIN_MODEL, timeout_s: float = 10.0, **fields: Any) -> ProviderCall:
    return provider_call(model_id, timeout_s, **fields)


# --- text -------------------------------------------------------------------------------


async def test_complete_text(provider: OpenAIProvider, openai_fake: OpenAIFake) -> None:
    completion = await complete(provider, make_call())

    assert completion.model == PLAIN_MODEL  # the catalog id, not OpenAI's dated snapshot
    assert completion.id.startswith("chatcmpl-")
    assert completion.choices[0].message.content == "You said: hello there"
    assert completion.choices[0].finish_reason == "stop"
    body = sent(openai_fake)
    assert body["model"] == "gpt-4.1"
    assert "stream" not in body
    assert openai_fake.requests[0].headers["authorization"] == f"Bearer {API_KEY}"


async def test_stream_text(provider: OpenAIProvider, openai_fake: OpenAIFake) -> None:
    chunks, usages = await stream(provider, make_call())

    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.role is None for c in chunks[1:])
    assert streamed_text(chunks) == "You said: hello there"
    assert len(chunks) > 3, "content arrives in pieces, as sent"
    assert [c.choices[0].finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert {c.model for c in chunks} == {PLAIN_MODEL}
    assert len({c.id for c in chunks}) == 1
    assert usages == [TokenUsage(input_tokens=8, output_tokens=4)]
    body = sent(openai_fake)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


async def test_streamed_usage_is_requested_whatever_the_caller_asked(
    provider: OpenAIProvider, openai_fake: OpenAIFake
) -> None:
    call = make_call(stream=True, stream_options={"include_usage": False})
    _, usages = await stream(provider, call)

    assert sent(openai_fake)["stream_options"] == {"include_usage": True}
    assert len(usages) == 1


# --- request mapping --------------------------------------------------------------------


async def test_system_prompt_history_and_images_are_sent_as_given(
    provider: OpenAIProvider, openai_fake: OpenAIFake
) -> None:
    tool_call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
    }
    messages = [
        {"role": "developer", "content": "Answer in French."},
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [tool_call]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 21}'},
        {"role": "assistant", "content": "Il fait 21 degrés."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "And these two pictures?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"},
                },
            ],
        },
    ]
    await complete(provider, make_call(messages=messages, tools=[WEATHER_TOOL]))

    expected = [dict(m) for m in messages]
    del expected[3]["content"]  # an absent content is left out, not sent as null
    assert sent(openai_fake)["messages"] == expected


async def test_sampling_and_output_fields_are_forwarded(
    provider: OpenAIProvider, openai_fake: OpenAIFake
) -> None:
    verbatim = {
        "temperature": 0.2,
        "top_p": 0.9,
        "seed": 7,
        "frequency_penalty": 0.5,
        "presence_penalty": -0.5,
        "logit_bias": {"50256": -100},
        "parallel_tool_calls": False,
        "response_format": {"type": "json_object"},
        "prompt_cache_key": "tenant-a",
        "safety_identifier": "user-hash",
    }
    call = make_call(**verbatim, max_tokens=64, user="someone", metadata={"k": "v"})
    await complete(provider, call)

    body = sent(openai_fake)
    assert {k: body[k] for k in verbatim} == verbatim
    # max_tokens is deprecated (refused by reasoning models): the cap always goes as
    # max_completion_tokens.
    assert body["max_completion_tokens"] == 64
    assert "max_tokens" not in body
    assert not {"user", "metadata", "baton"} & body.keys()
    assert provider.supported_fields >= verbatim.keys()


async def test_reasoning_effort_goes_only_to_reasoning_models(
    provider: OpenAIProvider, openai_fake: OpenAIFake
) -> None:
    await complete(provider, make_call(REASONING_MODEL, reasoning_effort="high"))
    assert sent(openai_fake)["reasoning_effort"] == "high"

    openai_fake.reset()
    await complete(provider, make_call(PLAIN_MODEL, reasoning_effort="high"))
    assert "reasoning_effort" not in sent(openai_fake)


async def test_key_and_url_are_explicit_not_read_from_the_environment(
    openai_fake: OpenAIFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    adapter = OpenAIProvider(api_key=API_KEY, base_url=openai_fake.base_url)
    try:
        await adapter.complete(make_call())
    finally:
        await adapter.aclose()

    assert openai_fake.requests[0].headers["authorization"] == f"Bearer {API_KEY}"


# --- stop and finish reasons ------------------------------------------------------------


@pytest.mark.parametrize("stop", ["END", ["END", "STOP"]])
async def test_stop_sequences(
    provider: OpenAIProvider, openai_fake: OpenAIFake, stop: str | list[str]
) -> None:
    openai_fake.script(Answer(text="alpha beta END gamma"))
    completion = await complete(provider, make_call(stop=stop))

    assert sent(openai_fake)["stop"] == stop
    assert completion.choices[0].message.content == "alpha beta "
    assert completion.choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    ("upstream", "expected"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("content_filter", "content_filter"),
        ("tool_calls", "tool_calls"),
        ("a_reason_openai_adds_later", "stop"),
    ],
)
async def test_finish_reason_mapping(
    provider: OpenAIProvider, openai_fake: OpenAIFake, upstream: str, expected: str
) -> None:
    openai_fake.script(Answer(text="some words", finish_reason=upstream), times=2)

    completion = await complete(provider, make_call())
    chunks, _ = await stream(provider, make_call())

    assert completion.choices[0].finish_reason == expected
    assert chunks[-1].choices[0].finish_reason == expected


async def test_output_limit_truncates_with_length(
    provider: OpenAIProvider, openai_fake: OpenAIFake
) -> None:
    openai_fake.script(Answer(text="one two three four five six"))
    completion = await complete(provider, make_call(max_completion_tokens=3))

    assert completion.choices[0].message.content == "one two three"
    assert completion.choices[0].finish_reason == "length"


# --- tools ------------------------------------------------------------------------------

PARIS = ScriptedToolCall("get_weather", '{"city": "Paris", "unit": "c"}', id="call_paris")
TOKYO = ScriptedToolCall("get_weather", '{"city": "Tokyo"}', id="call_tokyo")


async def test_tool_calls_complete(provider: OpenAIProvider, openai_fake: OpenAIFake) -> None:
    openai_fake.script(Answer(tool_calls=(PARIS, TOKYO)))
    choice = {"type": "function", "function": {"name": "get_weather"}}
    completion = await complete(provider, make_call(tools=[WEATHER_TOOL], tool_choice=choice))

    body = sent(openai_fake)
    assert body["tools"] == [WEATHER_TOOL]
    assert body["tool_choice"] == choice
    answer = completion.choices[0]
    assert answer.finish_reason == "tool_calls"
    assert answer.message.content is None
    calls = answer.message.tool_calls or []
    assert [(c.id, c.function.name) for c in calls] == [
        ("call_paris", "get_weather"),
        ("call_tokyo", "get_weather"),
    ]
    assert json.loads(calls[0].function.arguments) == {"city": "Paris", "unit": "c"}


async def test_tool_calls_streamed(provider: OpenAIProvider, openai_fake: OpenAIFake) -> None:
    openai_fake.script(Answer(tool_calls=(PARIS, TOKYO)))
    chunks, _ = await stream(provider, make_call(tools=[WEATHER_TOOL], tool_choice="required"))

    assert sent(openai_fake)["tool_choice"] == "required"
    calls = streamed_tool_calls(chunks)
    assert calls.keys() == {0, 1}
    assert (calls[0]["id"], calls[0]["name"]) == ("call_paris", "get_weather")
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris", "unit": "c"}
    assert json.loads(calls[1]["arguments"]) == {"city": "Tokyo"}
    pieces = [c for c in chunks if c.choices[0].delta.tool_calls]
    assert len(pieces) > 2, "arguments arrive in pieces, as OpenAI sends them"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


# --- usage ------------------------------------------------------------------------------

CACHED_AND_REASONING = Answer(
    text="done",
    prompt_tokens=1200,
    cached_tokens=1024,
    cache_write_tokens=176,
    completion_tokens=300,
    reasoning_tokens=256,
)
NORMALISED = TokenUsage(
    input_tokens=1200,
    output_tokens=300,
    cache_read_tokens=1024,
    cache_write_tokens=176,
    reasoning_tokens=256,
)


async def test_usage_normalisation_complete(
    provider: OpenAIProvider, openai_fake: OpenAIFake
) -> None:
    openai_fake.script(CACHED_AND_REASONING)
    result = await provider.complete(make_call(REASONING_MODEL))

    assert result.tokens == NORMALISED
    usage = result.completion.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (1200, 300, 1500)
    assert usage.prompt_tokens_details.cached_tokens == 1024
    assert usage.completion_tokens_details.reasoning_tokens == 256


async def test_usage_normalisation_streamed(
    provider: OpenAIProvider, openai_fake: OpenAIFake
) -> None:
    openai_fake.script(CACHED_AND_REASONING)
    chunks, usages = await stream(provider, make_call(REASONING_MODEL))

    assert usages == [NORMALISED]
    assert all(c.usage is None for c in chunks)


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        (Fault(status=500), UpstreamError, 502),
        (Fault(status=503), UpstreamUnavailableError, 503),
        (Fault(status=401), UpstreamError, 502),
        (Fault(status=400, message="Invalid value for 'temperature'."), InvalidRequestError, 400),
    ],
)
async def test_http_errors(
    provider: OpenAIProvider,
    openai_fake: OpenAIFake,
    fault: Fault,
    error: type[Exception],
    status: int,
) -> None:
    await check_http_error(provider, openai_fake, make_call(), fault, error, status)


async def test_rate_limit_carries_retry_after(
    provider: OpenAIProvider, openai_fake: OpenAIFake
) -> None:
    await check_rate_limit_carries_retry_after(provider, openai_fake, make_call())


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "1"}, 0.25),  # the precise one wins
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),  # OpenAI never sends it
        ({}, None),
    ],
)
def test_retry_after_headers(headers: dict[str, str], seconds: float | None) -> None:
    # A pure function, tested directly: the fake, like FakeServer, only sends retry-after.
    assert retry_after_seconds(headers) == seconds


@pytest.mark.parametrize("message", CONTEXT_LENGTH_MESSAGES)
async def test_context_length_error_is_flagged(
    provider: OpenAIProvider, openai_fake: OpenAIFake, message: str
) -> None:
    await check_context_length_error_is_flagged(provider, openai_fake, make_call(), message)


async def test_errors_before_a_stream_starts(
    provider: OpenAIProvider, openai_fake: OpenAIFake
) -> None:
    await check_error_before_a_stream_starts(provider, openai_fake, make_call())


async def test_slow_response_times_out(provider: OpenAIProvider, openai_fake: OpenAIFake) -> None:
    await check_slow_response_times_out(provider, openai_fake, make_call(timeout_s=0.3))


async def test_slow_chunks_time_out(provider: OpenAIProvider, openai_fake: OpenAIFake) -> None:
    chunks = await check_slow_chunks_time_out(provider, openai_fake, make_call(timeout_s=0.3))

    assert len(chunks) == 1  # the first chunk came in time, the second did not


async def test_broken_stream_raises_after_the_chunks_already_sent(
    provider: OpenAIProvider, openai_fake: OpenAIFake
) -> None:
    openai_fake.inject(Fault(break_after_chunks=2))
    chunks: list[ChatCompletionChunk] = []
    with pytest.raises(UpstreamError):
        await stream(provider, make_call(), into=chunks)

    assert len(chunks) == 2
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[1].choices[0].delta.content == "You "
    assert len(openai_fake.requests) == 1, "SDK retries must be off"


async def test_stream_ending_without_finish_reason_is_an_error(
    provider: OpenAIProvider, openai_fake: OpenAIFake
) -> None:
    openai_fake.script(Answer(text="cut short here", end_stream_after=2))
    chunks: list[ChatCompletionChunk] = []
    with pytest.raises(UpstreamError) as raised:
        await stream(provider, make_call(), into=chunks)

    assert type(raised.value) is UpstreamError
    assert len(chunks) == 2
