"""The Anthropic adapter through the real ``anthropic`` SDK, against the fake Messages API.

Every completion and chunk the adapter produces is validated against OpenAI's published
schemas; every request it sends is read back from the fake, which also rejects what the
real API rejects (so a mapping mistake fails as a 400, not silently).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from baton.errors import (
    InvalidRequestError,
    UnsupportedParameterError,
    UpstreamError,
    UpstreamUnavailableError,
)
from baton.providers.anthropic import AnthropicProvider
from baton.providers.base import ProviderCall
from baton.schema import ChatCompletionChunk
from baton.usage import TokenUsage
from tests.fakes.anthropic_fake import Answer, AnthropicFake, ToolUse
from tests.fakes.server import Fault
from tests.plugins.adapters import (
    WEATHER_PARAMETERS,
    WEATHER_TOOL,
    check_context_length_error_is_flagged,
    check_error_before_a_stream_starts,
    check_http_error,
    check_rate_limit_carries_retry_after,
    check_slow_chunks_time_out,
    check_slow_response_times_out,
    check_unreachable_upstream_is_unavailable,
    complete,
    provider_call,
    sent,
    stream,
    streamed_text,
    streamed_tool_calls,
)

pytestmark = pytest.mark.anyio

API_KEY = "sk-ant-test-baton"
BUDGET_MODEL = "anthropic/claude-haiku-4-5"  # thinks with a manual budget_tokens
ADAPTIVE_MODEL = "anthropic/claude-sonnet-4-6"  # thinks adaptively, with an effort level
ANTHROPIC_WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather in a city.",
    "input_schema": WEATHER_PARAMETERS,
}


@pytest.fixture
async def provider(
    anthropic_fake: AnthropicFake, anyio_backend: str
) -> AsyncIterator[AnthropicProvider]:
    adapter = AnthropicProvider(api_key=API_KEY, base_url=anthropic_fake.url)
    yield adapter
    await adapter.aclose()


def make_call(model_id: str = BUDGET_MODEL, timeout_s: float = 10.0, **fields: Any) -> ProviderCall:
    return provider_call(model_id, timeout_s, **fields)


# --- text -------------------------------------------------------------------------------


async def test_complete_text(provider: AnthropicProvider, anthropic_fake: AnthropicFake) -> None:
    completion = await complete(provider, make_call())

    assert completion.model == BUDGET_MODEL  # the catalog id, not Anthropic's name
    assert completion.id.startswith("chatcmpl-")
    assert completion.choices[0].message.content == "hello there"
    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].finish_reason == "stop"
    body = sent(anthropic_fake)
    assert body == {
        "model": "claude-haiku-4-5",
        "max_tokens": 4096,  # required upstream: min(model limit, default) when unset
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}],
    }
    assert anthropic_fake.requests[0].path == "/v1/messages"
    assert anthropic_fake.requests[0].headers["authorization"] == f"Bearer {API_KEY}"


async def test_stream_text(provider: AnthropicProvider, anthropic_fake: AnthropicFake) -> None:
    anthropic_fake.script(text="The quick brown fox jumps")
    chunks, usages = await stream(provider, make_call())

    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.role is None for c in chunks[1:])
    assert streamed_text(chunks) == "The quick brown fox jumps"
    assert len(chunks) == 7, "role, five pieces of content as sent, finish"
    assert [c.choices[0].finish_reason for c in chunks[:-1]] == [None] * 6
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert {c.model for c in chunks} == {BUDGET_MODEL}
    assert len({c.id for c in chunks}) == 1
    assert usages == [TokenUsage(input_tokens=2, output_tokens=5)]
    assert sent(anthropic_fake)["stream"] is True


async def test_max_tokens_is_the_callers_cap_clamped_to_the_model(
    provider: AnthropicProvider, anthropic_fake: AnthropicFake
) -> None:
    await complete(provider, make_call(max_completion_tokens=100))
    assert sent(anthropic_fake)["max_tokens"] == 100

    anthropic_fake.reset()
    await complete(provider, make_call(max_tokens=10_000_000))
    assert sent(anthropic_fake)["max_tokens"] == 64000  # claude-haiku-4-5's output limit


async def test_key_and_url_are_explicit_not_read_from_the_environment(
    anthropic_fake: AnthropicFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-the-environment")
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "token-from-the-environment")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    adapter = AnthropicProvider(api_key=API_KEY, base_url=anthropic_fake.url)
    try:
        await adapter.complete(make_call())
    finally:
        await adapter.aclose()

    assert anthropic_fake.requests[0].headers["authorization"] == f"Bearer {API_KEY}"


# --- request mapping --------------------------------------------------------------------


async def test_system_prompt_and_history_are_merged_into_alternating_turns(
    provider: AnthropicProvider, anthropic_fake: AnthropicFake
) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        {"role": "user", "content": "Bonjour."},
        {"role": "user", "content": [{"type": "text", "text": "Ça va ?"}]},
        {"role": "assistant", "content": "Oui."},
        {"role": "assistant", "content": [{"type": "text", "text": "Et vous ?"}]},
        {"role": "user", "content": "Très bien."},
    ]
    await complete(provider, make_call(messages=messages, user="user-hash-1"))

    body = sent(anthropic_fake)
    assert body["system"] == "Be brief.\n\nAnswer in French."
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Bonjour."}, {"type": "text", "text": "Ça va ?"}],
        },
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "Oui."}, {"type": "text", "text": "Et vous ?"}],
        },
        {"role": "user", "content": [{"type": "text", "text": "Très bien."}]},
    ]
    assert body["metadata"] == {"user_id": "user-hash-1"}


async def test_images_as_data_and_http_urls(
    provider: AnthropicProvider, anthropic_fake: AnthropicFake
) -> None:
    content = [
        {"type": "text", "text": "What is in these pictures?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
    ]
    await complete(provider, make_call(messages=[{"role": "user", "content": content}]))

    assert sent(anthropic_fake)["messages"][0]["content"] == [
        {"type": "text", "text": "What is in these pictures?"},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


@pytest.mark.parametrize(
    "url", ["data:image/tiff;base64,AAAA", "data:image/png,plain-text", "ftp://example.com/a.png"]
)
async def test_unusable_images_are_a_400_before_any_call(
    provider: AnthropicProvider, anthropic_fake: AnthropicFake, url: str
) -> None:
    content = [{"type": "image_url", "image_url": {"url": url}}]
    with pytest.raises(InvalidRequestError) as raised:
        await provider.complete(make_call(messages=[{"role": "user", "content": content}]))

    assert raised.value.param == "messages"
    assert anthropic_fake.requests == []


async def test_tool_history_becomes_tool_use_and_merged_tool_results(
    provider: AnthropicProvider, anthropic_fake: AnthropicFake
) -> None:
    def call(call_id: str, city: str) -> dict[str, Any]:
        arguments = json.dumps({"city": city})
        return {
            "id": call_id,
            "type": "function",
            "function": {"name": "get_weather", "arguments": arguments},
        }

    messages = [
        {"role": "user", "content": "Weather in Paris and Tokyo?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [call("c1", "Paris"), call("c2", "Tokyo")],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"temp_c": 21}'},
        {
            "role": "tool",
            "tool_call_id": "c2",
            "content": [{"type": "text", "text": '{"temp_c": 9}'}],
        },
        {"role": "user", "content": "Which is warmer?"},
    ]
    await complete(provider, make_call(messages=messages, tools=[WEATHER_TOOL]))

    body = sent(anthropic_fake)
    assert body["tools"] == [ANTHROPIC_WEATHER_TOOL]
    assert "tool_choice" not in body
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "c1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "c2", "name": "get_weather", "input": {"city": "Tokyo"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "c1", "content": '{"temp_c": 21}'},
                {"type": "tool_result", "tool_use_id": "c2", "content": '{"temp_c": 9}'},
                {"type": "text", "text": "Which is warmer?"},
            ],
        },
    ]


async def test_tool_arguments_that_are_not_json_are_a_400(
    provider: AnthropicProvider, anthropic_fake: AnthropicFake
) -> None:
    bad = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{not json"}}
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "tool_calls": [bad]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
    ]
    with pytest.raises(InvalidRequestError):
        await provider.complete(make_call(messages=messages))
    assert anthropic_fake.requests == []


@pytest.mark.parametrize(
    ("tool_choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            None,
            {"type": "tool", "name": "get_weather"},
        ),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("none", False, {"type": "none"}),
    ],
)
async def test_tool_choice_mapping(
    provider: AnthropicProvider,
    anthropic_fake: AnthropicFake,
    tool_choice: Any,
    parallel: bool | None,
    expected: dict[str, Any],
) -> None:
    fields: dict[str, Any] = {"tools": [WEATHER_TOOL]}
    if tool_choice is not None:
        fields["tool_choice"] = tool_choice
    if parallel is not None:
        fields["parallel_tool_calls"] = parallel
    await complete(provider, make_call(**fields))

    assert sent(anthropic_fake)["tool_choice"] == expected


async def test_json_schema_response_format_becomes_structured_output(
    provider: AnthropicProvider, anthropic_fake: AnthropicFake
) -> None:
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    response_format = {"type": "json_schema", "json_schema": {"name": "point", "schema": schema}}
    await complete(provider, make_call(response_format=response_format))

    assert sent(anthropic_fake)["output_config"] == {
        "format": {"type": "json_schema", "schema": schema}
    }


async def test_json_object_mode_is_unsupported_before_any_call(
    provider: AnthropicProvider, anthropic_fake: AnthropicFake
) -> None:
    with pytest.raises(UnsupportedParameterError) as raised:
        await provider.complete(make_call(response_format={"type": "json_object"}))

    assert raised.value.param == "response_format"
    assert anthropic_fake.requests == []


async def test_sampling_parameters_are_not_supported(
    provider: AnthropicProvider, anthropic_fake: AnthropicFake
) -> None:
    # The SDK speaks API version 2026-10-21, which rejects them on every model, so the
    # orchestrator drops them (and names them in x-baton-dropped-params).
    assert not {"temperature", "top_p"} & provider.supported_fields
    await complete(provider, make_call(temperature=0.2, top_p=0.5))

    assert not {"temperature", "top_p", "top_k"} & sent(anthropic_fake).keys()


# --- reasoning_effort -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("effort", "budget"), [("minimal", 1024), ("low", 2048), ("medium", 8192), ("high", 16384)]
)
async def test_reasoning_effort_becomes_a_thinking_budget(
    provider: AnthropicProvider, anthropic_fake: AnthropicFake, effort: str, budget: int
) -> None:
    result = await provider.complete(make_call(BUDGET_MODEL, reasoning_effort=effort))

    body = sent(anthropic_fake)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == 4096 + budget  # the default leaves room for the answer
    assert "output_config" not in body
    # The fake thought (6 words) before echoing; thinking is not part of the content.
    assert result.completion.choices[0].message.content == "hello there"
    assert result.tokens.reasoning_tokens == 6
    assert result.tokens.output_tokens == 6 + 2


async def test_thinking_budget_stays_below_the_callers_cap(
    provider: AnthropicProvider, anthropic_fake: AnthropicFake
) -> None:
    await complete(provider, make_call(reasoning_effort="high", max_tokens=3000))
    assert sent(anthropic_fake)["thinking"] == {"type": "enabled", "budget_tokens": 2999}

    anthropic_fake.reset()  # a cap below the API's 1024 minimum budget: no thinking
    await complete(provider, make_call(reasoning_effort="high", max_tokens=1000))
    assert "thinking" not in sent(anthropic_fake)


@pytest.mark.parametrize(
    ("model", "effort", "expected"),
    [
        (ADAPTIVE_MODEL, "minimal", "low"),
        (ADAPTIVE_MODEL, "high", "high"),
        ("anthropic/claude-opus-5-5", "xhigh", "xhigh"),
    ],
)
async def test_reasoning_effort_on_adaptive_models(
    provider: AnthropicProvider,
    anthropic_fake: AnthropicFake,
    model: str,
    effort: str,
    expected: str,
) -> None:
    await complete(provider, make_call(model, reasoning_effort=effort))

    body = sent(anthropic_fake)
    assert body["thinking"] == {"type": "adaptive"}
    assert body["output_config"] == {"effort": expected}


@pytest.mark.parametrize("model", [BUDGET_MODEL, ADAPTIVE_MODEL])
async def test_no_thinking_without_effort_or_with_none(
    provider: AnthropicProvider, anthropic_fake: AnthropicFake, model: str
) -> None:
    await complete(provider, make_call(model, reasoning_effort="none"))
    await complete(provider, make_call(model))

    for request in anthropic_fake.requests:
        assert not {"thinking", "output_config"} & request.body.keys()
        assert request.body["max_tokens"] == 4096


@pytest.mark.parametrize("model", [BUDGET_MODEL, ADAPTIVE_MODEL])
async def test_a_forced_tool_call_goes_without_thinking(
    provider: AnthropicProvider, anthropic_fake: AnthropicFake, model: str
) -> None:
    # The API rejects thinking with a forced tool choice; the caller's choice wins.
    call = make_call(model, reasoning_effort="high", tools=[WEATHER_TOOL], tool_choice="required")
    completion = await complete(provider, call)

    assert not {"thinking", "output_config"} & sent(anthropic_fake).keys()
    assert completion.choices[0].finish_reason == "tool_calls"


# --- stop and finish reasons ------------------------------------------------------------


@pytest.mark.parametrize("stop", ["END", ["STOP", "END"]])
async def test_stop_sequences(
    provider: AnthropicProvider, anthropic_fake: AnthropicFake, stop: str | list[str]
) -> None:
    anthropic_fake.script(text="alpha beta END gamma")
    completion = await complete(provider, make_call(stop=stop))

    assert sent(anthropic_fake)["stop_sequences"] == ([stop] if isinstance(stop, str) else stop)
    assert completion.choices[0].message.content == "alpha beta "
    assert completion.choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    ("upstream", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("a_reason_anthropic_adds_later", "stop"),
    ],
)
async def test_finish_reason_mapping(
    provider: AnthropicProvider, anthropic_fake: AnthropicFake, upstream: str, expected: str
) -> None:
    answer = Answer(text="some words", stop_reason=upstream)
    anthropic_fake.script(answer)
    anthropic_fake.script(answer)

    completion = await complete(provider, make_call())
    chunks, _ = await stream(provider, make_call())

    assert completion.choices[0].finish_reason == expected
    assert chunks[-1].choices[0].finish_reason == expected


async def test_output_limit_truncates_with_length(
    provider: AnthropicProvider, anthropic_fake: AnthropicFake
) -> None:
    anthropic_fake.script(text="one two three four five six")
    completion = await complete(provider, make_call(max_completion_tokens=3))

    assert completion.choices[0].message.content == "one two three"
    assert completion.choices[0].finish_reason == "length"


# --- tools ------------------------------------------------------------------------------

PARIS = ToolUse("get_weather", {"city": "Paris", "unit": "c"}, id="toolu_paris")
TOKYO = ToolUse("get_weather", {"city": "Tokyo"}, id="toolu_tokyo")


async def test_tool_calls_complete(
    provider: AnthropicProvider, anthropic_fake: AnthropicFake
) -> None:
    anthropic_fake.script(text="Let me check.", tool_uses=(PARIS, TOKYO))
    completion = await complete(provider, make_call(tools=[WEATHER_TOOL], tool_choice="auto"))

    answer = completion.choices[0]
    assert answer.finish_reason == "tool_calls"
    assert answer.message.content == "Let me check."
    calls = answer.message.tool_calls or []
    assert [(c.id, c.type, c.function.name) for c in calls] == [
        ("toolu_paris", "function", "get_weather"),
        ("toolu_tokyo", "function", "get_weather"),
    ]
    assert json.loads(calls[0].function.arguments) == {"city": "Paris", "unit": "c"}
    assert json.loads(calls[1].function.arguments) == {"city": "Tokyo"}


async def test_tool_call_alone_has_null_content(
    provider: AnthropicProvider, anthropic_fake: AnthropicFake
) -> None:
    # No script: the fake calls the tool a forced tool_choice names.
    call = make_call(tools=[WEATHER_TOOL], tool_choice="required")
    completion = await complete(provider, call)

    assert completion.choices[0].message.content is None
    assert [c.function.name for c in completion.choices[0].message.tool_calls or []] == [
        "get_weather"
    ]


async def test_tool_calls_streamed(
    provider: AnthropicProvider, anthropic_fake: AnthropicFake
) -> None:
    anthropic_fake.script(text="Checking both.", tool_uses=(PARIS, TOKYO))
    chunks, _ = await stream(provider, make_call(tools=[WEATHER_TOOL]))

    assert streamed_text(chunks) == "Checking both."
    calls = streamed_tool_calls(chunks)
    assert calls.keys() == {0, 1}  # OpenAI's tool index, not Anthropic's block index
    assert (calls[0]["id"], calls[0]["name"]) == ("toolu_paris", "get_weather")
    assert (calls[1]["id"], calls[1]["name"]) == ("toolu_tokyo", "get_weather")
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris", "unit": "c"}
    assert json.loads(calls[1]["arguments"]) == {"city": "Tokyo"}
    pieces = [c for c in chunks if c.choices[0].delta.tool_calls]
    assert len(pieces) == 8, "per call: id and name first, then three argument pieces"
    first = pieces[0].choices[0].delta.tool_calls
    assert first is not None
    assert (first[0].type, first[0].function) == (
        "function",
        {"name": "get_weather", "arguments": ""},
    )
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


# --- usage ------------------------------------------------------------------------------

CACHED_AND_THINKING = Answer(
    text="done",
    thinking="short thought",
    input_tokens=176,
    cache_read_input_tokens=1024,
    cache_creation_input_tokens=300,
    output_tokens=90,
    thinking_tokens=64,
)
NORMALISED = TokenUsage(
    input_tokens=176 + 1024 + 300,  # Anthropic's input_tokens exclude cache reads and writes
    output_tokens=90,
    cache_read_tokens=1024,
    cache_write_tokens=300,
    reasoning_tokens=64,
)


async def test_usage_normalisation_complete(
    provider: AnthropicProvider, anthropic_fake: AnthropicFake
) -> None:
    anthropic_fake.script(CACHED_AND_THINKING)
    result = await provider.complete(make_call())

    assert result.tokens == NORMALISED
    assert result.completion.choices[0].message.content == "done"
    usage = result.completion.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (1500, 90, 1590)
    assert usage.prompt_tokens_details.cached_tokens == 1024
    assert usage.completion_tokens_details.reasoning_tokens == 64


async def test_usage_normalisation_streamed(
    provider: AnthropicProvider, anthropic_fake: AnthropicFake
) -> None:
    # Input-side counts arrive in message_start, output counts in message_delta.
    anthropic_fake.script(CACHED_AND_THINKING)
    chunks, usages = await stream(provider, make_call())

    assert usages == [NORMALISED]
    assert streamed_text(chunks) == "done"  # the thinking stays upstream
    assert all(c.usage is None for c in chunks)


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        (Fault(status=500), UpstreamError, 502),
        (Fault(status=503), UpstreamUnavailableError, 503),
        (Fault(status=529, message="Overloaded"), UpstreamUnavailableError, 503),
        (Fault(status=401), UpstreamError, 502),
        (Fault(status=400, message="messages.0: bad block"), InvalidRequestError, 400),
    ],
)
async def test_http_errors(
    provider: AnthropicProvider,
    anthropic_fake: AnthropicFake,
    fault: Fault,
    error: type[Exception],
    status: int,
) -> None:
    await check_http_error(provider, anthropic_fake, make_call(), fault, error, status)


async def test_overloaded_is_unavailable_with_its_status(
    provider: AnthropicProvider, anthropic_fake: AnthropicFake
) -> None:
    anthropic_fake.inject(Fault(status=529, message="Overloaded"))
    with pytest.raises(UpstreamUnavailableError) as raised:
        await provider.complete(make_call())

    assert raised.value.upstream_status == 529
    assert raised.value.provider == "anthropic"
    assert "Overloaded" in raised.value.message


async def test_rate_limit_carries_retry_after(
    provider: AnthropicProvider, anthropic_fake: AnthropicFake
) -> None:
    await check_rate_limit_carries_retry_after(provider, anthropic_fake, make_call())


async def test_context_length_error_is_flagged(
    provider: AnthropicProvider, anthropic_fake: AnthropicFake
) -> None:
    message = "prompt is too long: 212000 tokens > 200000 maximum"
    await check_context_length_error_is_flagged(provider, anthropic_fake, make_call(), message)


async def test_unreachable_provider_is_unavailable(anyio_backend: str) -> None:
    await check_unreachable_upstream_is_unavailable(
        lambda url: AnthropicProvider(api_key=API_KEY, base_url=url), make_call()
    )


async def test_errors_before_a_stream_starts(
    provider: AnthropicProvider, anthropic_fake: AnthropicFake
) -> None:
    await check_error_before_a_stream_starts(provider, anthropic_fake, make_call())


async def test_slow_response_times_out(
    provider: AnthropicProvider, anthropic_fake: AnthropicFake
) -> None:
    await check_slow_response_times_out(provider, anthropic_fake, make_call(timeout_s=0.3))


async def test_slow_chunks_time_out(
    provider: AnthropicProvider, anthropic_fake: AnthropicFake
) -> None:
    chunks = await check_slow_chunks_time_out(provider, anthropic_fake, make_call(timeout_s=0.3))

    assert len(chunks) == 1  # message_start came in time, the next event did not


async def test_slow_chunks_within_the_timeout_still_stream(
    provider: AnthropicProvider, anthropic_fake: AnthropicFake
) -> None:
    anthropic_fake.inject(Fault(chunk_delay_s=0.05))
    chunks, usages = await stream(provider, make_call(timeout_s=10))

    assert streamed_text(chunks) == "hello there"
    assert len(usages) == 1


async def test_broken_stream_raises_after_the_chunks_already_sent(
    provider: AnthropicProvider, anthropic_fake: AnthropicFake
) -> None:
    anthropic_fake.script(text="one two three four five")
    # message_start, content_block_start, "one ", "two ", then the connection drops.
    anthropic_fake.inject(Fault(break_after_chunks=4))
    chunks: list[ChatCompletionChunk] = []
    with pytest.raises(UpstreamError):
        await stream(provider, make_call(), into=chunks)

    assert chunks[0].choices[0].delta.role == "assistant"
    assert streamed_text(chunks) == "one two "
    assert len(anthropic_fake.requests) == 1, "SDK retries must be off"


async def test_error_event_mid_stream_keeps_its_meaning(
    provider: AnthropicProvider, anthropic_fake: AnthropicFake
) -> None:
    anthropic_fake.script(text="partial answer", stream_error=("overloaded_error", "Overloaded"))
    chunks: list[ChatCompletionChunk] = []
    with pytest.raises(UpstreamUnavailableError) as raised:
        await stream(provider, make_call(), into=chunks)

    assert streamed_text(chunks) == "partial answer"
    assert raised.value.upstream_status == 529
    assert len(anthropic_fake.requests) == 1
