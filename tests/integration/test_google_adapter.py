"""The Gemini adapter through the real ``google-genai`` SDK, against the fake Gemini API.

Every completion and chunk the adapter produces is validated against OpenAI's published
schemas; every request it sends is read back from the fake as the SDK put it on the wire.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from google.genai import errors as genai_errors

from baton.catalog import load_catalog
from baton.errors import (
    InvalidRequestError,
    NotFoundError,
    UpstreamError,
    UpstreamUnavailableError,
)
from baton.providers.base import ProviderCall
from baton.providers.google import GoogleProvider
from baton.providers.google.errors import translate_api_error
from baton.schema import ChatCompletionChunk
from baton.usage import TokenUsage
from tests.fakes.google_fake import GoogleFake, google_error_body
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

API_KEY = "gemini-test-key-baton"
FLASH = "google/gemini-2.5-flash"
GEMINI_3 = "google/gemini-3.5-flash"
TIME_TOOL = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake-image").decode()


@pytest.fixture
async def provider(google_fake: GoogleFake, anyio_backend: str) -> AsyncIterator[GoogleProvider]:
    adapter = GoogleProvider(api_key=API_KEY, base_url=google_fake.url)
    yield adapter
    await adapter.aclose()


def make_call(model_id: str = FLASH, timeout_s: float = 10.0, **fields: Any) -> ProviderCall:
    return provider_call(model_id, timeout_s, **fields)


# --- text -------------------------------------------------------------------------------


async def test_complete_text(provider: GoogleProvider, google_fake: GoogleFake) -> None:
    completion = await complete(provider, make_call())

    assert completion.model == FLASH
    assert completion.id.startswith("chatcmpl-")
    assert completion.choices[0].message.content == "echo: hello there"
    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.prompt_tokens == 2
    request = google_fake.requests[0]
    assert request.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert request.headers["x-goog-api-key"] == API_KEY
    assert sent(google_fake)["contents"] == [{"role": "user", "parts": [{"text": "hello there"}]}]


async def test_stream_text(provider: GoogleProvider, google_fake: GoogleFake) -> None:
    chunks, usages = await stream(
        provider, make_call(messages=[{"role": "user", "content": "one two three"}])
    )

    assert chunks[0].choices[0].delta.role == "assistant"
    assert streamed_text(chunks) == "echo: one two three"
    content_chunks = [c for c in chunks if c.choices[0].delta.content]
    assert len(content_chunks) == 4, "each upstream chunk is passed on as it comes"
    assert [c.choices[0].finish_reason for c in chunks] == [None] * (len(chunks) - 1) + ["stop"]
    assert len({c.id for c in chunks}) == 1
    assert {c.model for c in chunks} == {FLASH}
    assert usages == [TokenUsage(input_tokens=3, output_tokens=4)]
    assert google_fake.requests[0].path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"


async def test_system_prompt_history_and_media_are_sent(
    provider: GoogleProvider, google_fake: GoogleFake
) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is in these?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp?x=1"}},
                {"type": "input_audio", "input_audio": {"data": PNG, "format": "wav"}},
            ],
        },
    ]
    completion = await complete(provider, make_call(messages=messages))

    body = sent(google_fake)
    assert body["systemInstruction"]["parts"] == [
        {"text": "You are terse."},
        {"text": "Answer in French."},
    ]
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["contents"][1]["parts"] == [{"text": "first answer"}]
    last = body["contents"][2]["parts"]
    assert last[0] == {"text": "what is in these?"}
    # The SDK writes nested objects in snake_case; Google's JSON parser takes both.
    assert last[1]["inlineData"]["mime_type"] == "image/png"
    assert base64.urlsafe_b64decode(last[1]["inlineData"]["data"]) == base64.b64decode(PNG)
    assert last[2] == {
        "fileData": {"file_uri": "https://example.com/cat.webp?x=1", "mime_type": "image/webp"}
    }
    assert last[3]["inlineData"]["mime_type"] == "audio/wav"
    assert completion.choices[0].message.content == "echo: what is in these?"


async def test_sampling_and_output_fields_are_forwarded(
    provider: GoogleProvider, google_fake: GoogleFake
) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    await complete(
        provider,
        make_call(
            temperature=0.3,
            top_p=0.9,
            seed=7,
            max_completion_tokens=1_000_000,
            response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
        ),
    )

    body = sent(google_fake)
    config = body["generationConfig"]
    assert config["temperature"] == 0.3
    assert config["topP"] == 0.9
    assert config["seed"] == 7
    assert config["maxOutputTokens"] == load_catalog().get(FLASH).max_output_tokens
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == schema
    assert "thinkingConfig" not in config
    # Client-side SDK switches (retries, AFC, continuation, timeout) never reach the wire.
    assert set(body) == {"contents", "generationConfig"}


async def test_json_object_mode(provider: GoogleProvider, google_fake: GoogleFake) -> None:
    await complete(provider, make_call(response_format={"type": "json_object"}))

    config = sent(google_fake)["generationConfig"]
    assert config == {"responseMimeType": "application/json"}


async def test_key_url_and_api_version_are_explicit_not_read_from_the_environment(
    google_fake: GoogleFake, monkeypatch: pytest.MonkeyPatch, anyio_backend: str
) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "key-from-environment")
    monkeypatch.setenv("GEMINI_API_KEY", "key-from-environment")
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("GOOGLE_GENAI_API_VERSION", "v1")
    monkeypatch.setenv("GOOGLE_GENAI_USE_VERTEXAI", "true")
    adapter = GoogleProvider(api_key=API_KEY, base_url=google_fake.url)
    try:
        await complete(adapter, make_call())
    finally:
        await adapter.aclose()

    request = google_fake.requests[0]
    assert request.headers["x-goog-api-key"] == API_KEY
    assert request.path == "/v1beta/models/gemini-2.5-flash:generateContent"


async def test_stop_sequences(provider: GoogleProvider, google_fake: GoogleFake) -> None:
    completion = await complete(
        provider,
        make_call(messages=[{"role": "user", "content": "one two three four"}], stop="three"),
    )

    assert sent(google_fake)["generationConfig"]["stopSequences"] == ["three"]
    assert completion.choices[0].message.content == "echo: one two "
    assert completion.choices[0].finish_reason == "stop"


async def test_output_limit_truncates_with_length(
    provider: GoogleProvider, google_fake: GoogleFake
) -> None:
    chunks, _ = await stream(
        provider, make_call(messages=[{"role": "user", "content": "a b c d e"}], max_tokens=3)
    )

    assert google_fake.requests[0].body["generationConfig"]["maxOutputTokens"] == 3
    assert streamed_text(chunks) == "echo: a b "
    assert chunks[-1].choices[0].finish_reason == "length"


@pytest.mark.parametrize(
    ("gemini", "openai"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("OTHER", "stop"),
    ],
)
async def test_finish_reason_mapping(
    provider: GoogleProvider, google_fake: GoogleFake, gemini: str, openai: str
) -> None:
    google_fake.script(text="partial answer", finish_reason=gemini)
    google_fake.script(text="partial answer", finish_reason=gemini)

    completion = await complete(provider, make_call())
    chunks, _ = await stream(provider, make_call())

    assert completion.choices[0].finish_reason == openai
    assert chunks[-1].choices[0].finish_reason == openai


# --- reasoning --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "effort", "thinking"),
    [
        (GEMINI_3, "low", {"include_thoughts": False, "thinking_level": "LOW"}),
        (GEMINI_3, "high", {"include_thoughts": False, "thinking_level": "HIGH"}),
        (GEMINI_3, "none", {"include_thoughts": False, "thinking_level": "MINIMAL"}),
        # Gemini 3 Pro's lowest level is LOW.
        (
            "google/gemini-3.1-pro-preview",
            "minimal",
            {"include_thoughts": False, "thinking_level": "LOW"},
        ),
        (FLASH, "none", {"include_thoughts": False, "thinking_budget": 0}),
        (FLASH, "medium", {"include_thoughts": False, "thinking_budget": 8192}),
        (FLASH, "xhigh", {"include_thoughts": False, "thinking_budget": 24576}),
        # Gemini 2.5 Pro cannot switch thinking off: its floor is 128 tokens.
        ("google/gemini-2.5-pro", "none", {"include_thoughts": False, "thinking_budget": 128}),
        ("google/gemini-2.5-pro", "xhigh", {"include_thoughts": False, "thinking_budget": 32768}),
    ],
)
async def test_reasoning_effort_maps_to_thinking_config(
    provider: GoogleProvider,
    google_fake: GoogleFake,
    model_id: str,
    effort: str,
    thinking: dict[str, Any],
) -> None:
    await complete(provider, make_call(model_id, reasoning_effort=effort))

    assert sent(google_fake)["generationConfig"]["thinkingConfig"] == thinking


async def test_thought_parts_are_not_part_of_the_answer(
    provider: GoogleProvider, google_fake: GoogleFake
) -> None:
    google_fake.script(
        text="the answer",
        usage={
            "promptTokenCount": 2,
            "candidatesTokenCount": 2,
            "thoughtsTokenCount": 9,
            "totalTokenCount": 13,
        },
    )
    result = await provider.complete(make_call(GEMINI_3, reasoning_effort="high"))

    assert result.completion.choices[0].message.content == "the answer"
    assert result.tokens.reasoning_tokens == 9


# --- tools ------------------------------------------------------------------------------

CALLS = [
    {"name": "get_weather", "args": {"city": "Paris", "unit": "c"}},
    {"name": "get_time", "args": {"zone": "Europe/Paris", "note": "déjà vu"}},
]


async def test_tool_calls_complete(provider: GoogleProvider, google_fake: GoogleFake) -> None:
    google_fake.script(function_calls=CALLS)
    completion = await complete(
        provider, make_call(tools=[WEATHER_TOOL, TIME_TOOL], tool_choice="auto")
    )

    body = sent(google_fake)
    declarations = body["tools"][0]["functionDeclarations"]
    assert declarations[0] == {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters_json_schema": WEATHER_PARAMETERS,
    }
    assert declarations[1]["name"] == "get_time"
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert [json.loads(c.function.arguments) for c in calls] == [c["args"] for c in CALLS]
    assert all(c.id.startswith("call_") for c in calls)
    assert len({c.id for c in calls}) == 2


async def test_tool_call_ids_are_stable_for_the_same_response(
    provider: GoogleProvider, google_fake: GoogleFake
) -> None:
    google_fake.script(function_calls=CALLS)
    google_fake.script(function_calls=CALLS)
    call = make_call(tools=[WEATHER_TOOL, TIME_TOOL])

    first = await complete(provider, call)
    chunks, _ = await stream(provider, call)

    first_ids = [c.id for c in first.choices[0].message.tool_calls or []]
    streamed_ids = [c["id"] for c in streamed_tool_calls(chunks).values()]
    assert google_fake.requests[0].body == google_fake.requests[1].body  # same responseId
    assert first_ids == streamed_ids


async def test_tool_calls_streamed(provider: GoogleProvider, google_fake: GoogleFake) -> None:
    google_fake.script(text="Let me check.", function_calls=CALLS)
    chunks, usages = await stream(provider, make_call(tools=[WEATHER_TOOL, TIME_TOOL]))

    assert streamed_text(chunks) == "Let me check."
    calls = streamed_tool_calls(chunks)
    assert sorted(calls) == [0, 1]
    for index, expected in enumerate(CALLS):
        assert calls[index]["name"] == expected["name"]
        assert calls[index]["id"].startswith("call_")
        assert json.loads(calls[index]["arguments"]) == expected["args"]
    openers = [d for c in chunks for d in c.choices[0].delta.tool_calls or [] if d.id is not None]
    assert [(d.index, d.type) for d in openers] == [(0, "function"), (1, "function")]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert len(usages) == 1


@pytest.mark.parametrize(
    ("tool_choice", "expected"),
    [
        ("none", {"mode": "NONE"}),
        ("auto", {"mode": "AUTO"}),
        ("required", {"mode": "ANY"}),
        (
            {"type": "function", "function": {"name": "get_time"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_time"]},
        ),
    ],
)
async def test_tool_choice_mapping(
    provider: GoogleProvider, google_fake: GoogleFake, tool_choice: Any, expected: dict[str, Any]
) -> None:
    await complete(provider, make_call(tools=[WEATHER_TOOL, TIME_TOOL], tool_choice=tool_choice))

    assert sent(google_fake)["toolConfig"] == {"functionCallingConfig": expected}


def tool_history() -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "weather and time in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": "{}"},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_b", "content": "14:05"},
        {"role": "tool", "tool_call_id": "call_a", "content": '{"temp": 21}'},
    ]


@pytest.mark.parametrize(("model_id", "signed"), [(GEMINI_3, True), (FLASH, False)])
async def test_tool_results_are_sent_as_function_responses(
    provider: GoogleProvider, google_fake: GoogleFake, model_id: str, signed: bool
) -> None:
    await complete(provider, make_call(model_id, messages=tool_history(), tools=[WEATHER_TOOL]))

    contents = sent(google_fake)["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    model_parts = contents[1]["parts"]
    assert [p["functionCall"] for p in model_parts] == [
        {"name": "get_weather", "args": {"city": "Paris"}},
        {"name": "get_time", "args": {}},
    ]
    # Gemini 3 rejects replayed calls without a thought signature; OpenAI history has
    # none, so the documented placeholder goes on the first call of the turn.
    signature = model_parts[0].get("thoughtSignature")
    assert signature == ("skip_thought_signature_validator" if signed else None)
    assert "thoughtSignature" not in model_parts[1]
    # Both results answer one model turn, so they share one user turn, names looked up.
    assert contents[2]["parts"] == [
        {"functionResponse": {"name": "get_time", "response": {"output": "14:05"}}},
        {"functionResponse": {"name": "get_weather", "response": {"output": '{"temp": 21}'}}},
    ]


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "tool", "tool_call_id": "call_nowhere", "content": "x"}],
        [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
                ],
            },
        ],
        [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "ftp://example.com/a.png"}}],
            }
        ],
        [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}
                ],
            }
        ],
        [{"role": "system", "content": "only a system prompt"}],
    ],
    ids=["unknown-tool-call-id", "bad-arguments", "ftp-image", "bad-base64", "system-only"],
)
async def test_bad_requests_are_400s_without_an_upstream_call(
    provider: GoogleProvider, google_fake: GoogleFake, messages: list[dict[str, Any]]
) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        await provider.complete(make_call(messages=messages))

    assert raised.value.status == 400
    assert raised.value.param == "messages"
    assert google_fake.requests == []


# --- usage ------------------------------------------------------------------------------

USAGE = {
    "promptTokenCount": 120,
    "cachedContentTokenCount": 100,
    "candidatesTokenCount": 30,
    "thoughtsTokenCount": 50,
    "totalTokenCount": 200,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 120}],
    "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 100}],
}
NORMALISED = TokenUsage(
    input_tokens=120, output_tokens=80, cache_read_tokens=100, reasoning_tokens=50
)


async def test_usage_normalisation_complete(
    provider: GoogleProvider, google_fake: GoogleFake
) -> None:
    google_fake.script(text="ok", usage=USAGE)
    result = await provider.complete(make_call(GEMINI_3))

    assert result.tokens == NORMALISED
    usage = result.completion.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (120, 80, 200)
    assert usage.prompt_tokens_details.cached_tokens == 100
    assert usage.completion_tokens_details.reasoning_tokens == 50


async def test_usage_normalisation_streamed(
    provider: GoogleProvider, google_fake: GoogleFake
) -> None:
    google_fake.script(text="a few words here", usage=USAGE)
    _, usages = await stream(provider, make_call(GEMINI_3))

    # Intermediate chunks carry running prompt counts only; the last one counts.
    assert usages == [NORMALISED]


async def test_tool_use_prompt_tokens_count_as_input(
    provider: GoogleProvider, google_fake: GoogleFake
) -> None:
    google_fake.script(
        text="ok",
        usage={
            "promptTokenCount": 10,
            "toolUsePromptTokenCount": 5,
            "candidatesTokenCount": 1,
            "totalTokenCount": 16,
        },
    )
    result = await provider.complete(make_call())

    assert result.tokens == TokenUsage(input_tokens=15, output_tokens=1)


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        (Fault(status=500), UpstreamError, 502),
        (Fault(status=503), UpstreamUnavailableError, 503),
        (Fault(status=400), InvalidRequestError, 400),
        (Fault(status=404), NotFoundError, 404),
        (Fault(status=403), UpstreamError, 502),
    ],
)
async def test_http_errors(
    provider: GoogleProvider,
    google_fake: GoogleFake,
    fault: Fault,
    error: type[Exception],
    status: int,
) -> None:
    raised = await check_http_error(provider, google_fake, make_call(), fault, error, status)

    assert isinstance(raised.__cause__, genai_errors.APIError)


async def test_rate_limit_carries_retry_after(
    provider: GoogleProvider, google_fake: GoogleFake
) -> None:
    await check_rate_limit_carries_retry_after(provider, google_fake, make_call())


def test_retry_after_is_read_from_retry_info_without_a_header() -> None:
    body = google_error_body(429, "Resource has been exhausted", retry_delay_s=37.5)
    error = translate_api_error(genai_errors.ClientError(429, body, None))

    assert isinstance(error, UpstreamUnavailableError)
    assert error.retry_after == 37.5


async def test_context_length_error_is_flagged(
    provider: GoogleProvider, google_fake: GoogleFake
) -> None:
    message = (
        "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."
    )
    await check_context_length_error_is_flagged(provider, google_fake, make_call(), message)


async def test_errors_before_a_stream_starts(
    provider: GoogleProvider, google_fake: GoogleFake
) -> None:
    await check_error_before_a_stream_starts(provider, google_fake, make_call())


async def test_slow_response_times_out(provider: GoogleProvider, google_fake: GoogleFake) -> None:
    await check_slow_response_times_out(provider, google_fake, make_call(timeout_s=0.3))


async def test_slow_chunks_time_out(provider: GoogleProvider, google_fake: GoogleFake) -> None:
    chunks = await check_slow_chunks_time_out(provider, google_fake, make_call(timeout_s=0.3))

    # The first upstream chunk came in time (role + its text), the second did not.
    assert streamed_text(chunks) == "echo: "


async def test_broken_stream_raises_after_the_chunks_already_sent(
    provider: GoogleProvider, google_fake: GoogleFake
) -> None:
    google_fake.inject(Fault(break_after_chunks=2))
    chunks: list[ChatCompletionChunk] = []
    with pytest.raises(UpstreamError):
        await stream(
            provider,
            make_call(messages=[{"role": "user", "content": "one two three"}]),
            into=chunks,
        )

    assert chunks[0].choices[0].delta.role == "assistant"
    assert streamed_text(chunks) == "echo: one "
    assert all(c.choices[0].finish_reason is None for c in chunks)
    assert len(google_fake.requests) == 1, "SDK retries and continuation must be off"


async def test_unreachable_upstream_is_unavailable(anyio_backend: str) -> None:
    await check_unreachable_upstream_is_unavailable(
        lambda url: GoogleProvider(api_key=API_KEY, base_url=url), make_call()
    )
