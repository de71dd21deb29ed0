"""Streaming on the OpenAI endpoint, in-process, against each provider's wire fake.

Every streamed answer is read as an OpenAI client reads it: ``data:`` lines, each a
``chat.completion.chunk`` valid under OpenAI's published schema, closed by
``data: [DONE]``, or by one ``data: {"error": ...}`` event when the stream broke after
it started. The fakes are real HTTP servers reached through the real SDKs, so a break,
a stall or a late first byte is a real one on a real socket.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx
import pytest

from baton.kv.client import get_async_client
from baton.kv.usage_counters import UsageCounters, read_usage
from tests.fakes import anthropic_fake as anthropic_wire
from tests.fakes import openai_fake as openai_wire
from tests.fakes.google_fake import GoogleFake
from tests.fakes.server import FakeServer, Fault
from tests.plugins.app import AppClient, AppFactory
from tests.spec import assert_valid

pytestmark = pytest.mark.anyio

PROMPT = "Tell me how an orchestra follows the conductor and the baton"
WEATHER = {"city": "Paris", "unit": "c"}
CLOCK = {"timezone": "Europe/Paris"}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}},
        },
    },
]


# --- the provider fakes, as one parametrised fixture --------------------------------------


@dataclass(frozen=True)
class Upstream:
    """One provider fake and what the tests need to drive it alike."""

    provider: str
    model: str
    fake: FakeServer
    env: dict[str, str]
    # Script the next answer: (text, prompt tokens, completion tokens).
    script_text: Callable[[str, int, int], None]
    # Script the next answer as calls to get_weather(WEATHER) and get_time(CLOCK).
    script_tool_calls: Callable[[], None]
    # Chunks the fake sends before a text answer's first content piece.
    events_before_text: int


def _openai(fake: openai_wire.OpenAIFake) -> Upstream:
    def text(answer: str, prompt: int, completion: int) -> None:
        fake.script(
            openai_wire.Answer(text=answer, prompt_tokens=prompt, completion_tokens=completion)
        )

    def tools() -> None:
        calls = (
            openai_wire.ScriptedToolCall("get_weather", json.dumps(WEATHER)),
            openai_wire.ScriptedToolCall("get_time", json.dumps(CLOCK)),
        )
        fake.script(openai_wire.Answer(tool_calls=calls))

    env = {"OPENAI_API_KEY": "sk-fake-streaming", "OPENAI_BASE_URL": fake.base_url}
    return Upstream("openai", "openai/gpt-5.4-mini", fake, env, text, tools, 1)


def _anthropic(fake: anthropic_wire.AnthropicFake) -> Upstream:
    def text(answer: str, prompt: int, completion: int) -> None:
        fake.script(text=answer, input_tokens=prompt, output_tokens=completion)

    def tools() -> None:
        fake.script(
            tool_uses=(
                anthropic_wire.ToolUse("get_weather", WEATHER),
                anthropic_wire.ToolUse("get_time", CLOCK),
            )
        )

    env = {"ANTHROPIC_API_KEY": "sk-ant-fake-streaming", "ANTHROPIC_BASE_URL": fake.url}
    # message_start, content_block_start
    return Upstream("anthropic", "anthropic/claude-haiku-4-5", fake, env, text, tools, 2)


def _google(fake: GoogleFake) -> Upstream:
    def text(answer: str, prompt: int, completion: int) -> None:
        usage = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": completion,
            "totalTokenCount": prompt + completion,
        }
        fake.script(text=answer, usage=usage)

    def tools() -> None:
        calls = [{"name": "get_weather", "args": WEATHER}, {"name": "get_time", "args": CLOCK}]
        fake.script(function_calls=calls)

    env = {"GEMINI_API_KEY": "gemini-fake-streaming", "GEMINI_BASE_URL": fake.url}
    return Upstream("google", "google/gemini-2.5-flash", fake, env, text, tools, 0)


_BUILDERS: dict[str, Callable[[Any], Upstream]] = {
    "openai": _openai,
    "anthropic": _anthropic,
    "google": _google,
}


def upstream_for(provider: str, request: pytest.FixtureRequest) -> Upstream:
    return _BUILDERS[provider](request.getfixturevalue(f"{provider}_fake"))


@pytest.fixture(params=sorted(_BUILDERS))
def upstream(request: pytest.FixtureRequest) -> Upstream:
    """Each provider's fake in turn (reset for the test)."""
    return upstream_for(request.param, request)


@asynccontextmanager
async def serving(
    make_app: AppFactory, upstream: Upstream, **settings: str
) -> AsyncIterator[AppClient]:
    """The app with ``upstream`` configured (plus ``settings`` env vars).

    The adapter is built first, so importing its SDK (seconds, once per process) never
    eats into a request's shortened deadline; make_app closes it in this test's loop.
    """
    async with make_app(env={**upstream.env, **settings}) as app:
        app.runtime.registry.for_model(app.runtime.catalog.get(upstream.model))
        yield app


# --- reading a stream as a client does ------------------------------------------------------


@dataclass(frozen=True)
class Sse:
    """A streamed response body, parsed line by line."""

    lines: list[str]

    @classmethod
    def of(cls, response: httpx.Response) -> Sse:
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/event-stream")
        return cls([line for line in response.text.split("\n") if line])

    @property
    def data(self) -> list[str]:
        return [line.removeprefix("data: ") for line in self.lines if line.startswith("data: ")]

    @property
    def done(self) -> bool:
        return self.data[-1:] == ["[DONE]"]

    @property
    def chunks(self) -> list[dict[str, Any]]:
        """Every chunk event, each checked against OpenAI's schema."""
        chunks = []
        for payload in self.data:
            if payload == "[DONE]":
                continue
            event = json.loads(payload)
            if "error" in event:
                continue
            assert_valid("CreateChatCompletionStreamResponse", event)
            chunks.append(event)
        return chunks

    @property
    def errors(self) -> list[dict[str, Any]]:
        """Every error event, each checked against OpenAI's ``ErrorResponse``."""
        events = [json.loads(p) for p in self.data if p != "[DONE]"]
        errors = [e for e in events if "error" in e]
        for error in errors:
            assert_valid("ErrorResponse", error)
        return [e["error"] for e in errors]

    @property
    def text(self) -> str:
        return "".join(
            choice["delta"].get("content") or "" for c in self.chunks for choice in c["choices"]
        )

    def assert_well_formed(self) -> None:
        """Only data lines (and keep-alive comments), the last one [DONE]; no error."""
        assert all(line.startswith(("data: ", ":")) for line in self.lines), self.lines
        assert self.done, self.lines[-3:]
        assert self.data.count("[DONE]") == 1
        assert not self.errors
        assert self.chunks, "a stream with no chunks"

    def assert_broken(self) -> dict[str, Any]:
        """Ended by exactly one error event, as its last line, with no [DONE]."""
        assert "[DONE]" not in self.data, self.lines[-3:]
        errors = self.errors
        assert len(errors) == 1, errors
        assert "error" in json.loads(self.data[-1]), "the error event must come last"
        return errors[0]


def tool_calls(chunks: list[dict[str, Any]]) -> dict[int, dict[str, str]]:
    """Tool-call deltas joined per index, as an OpenAI client joins them."""
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            for delta in choice["delta"].get("tool_calls") or []:
                call = calls.setdefault(delta["index"], {"id": "", "name": "", "arguments": ""})
                call["id"] += delta.get("id") or ""
                function = delta.get("function") or {}
                call["name"] += function.get("name") or ""
                call["arguments"] += function.get("arguments") or ""
    return calls


def finish_reasons(chunks: list[dict[str, Any]]) -> list[str]:
    return [c["finish_reason"] for chunk in chunks for c in chunk["choices"] if c["finish_reason"]]


def chat_body(model: str, *, stream: bool, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": stream,
        **extra,
    }


async def upstream_closed(fake: FakeServer, within_s: float = 5.0) -> bool:
    """Whether the fake saw its stream's client go away within ``within_s``."""
    with anyio.move_on_after(within_s):
        # Polled: the fake counts in its own server thread, with no event to await.
        while not fake.disconnects:  # noqa: ASYNC110
            await anyio.sleep(0.02)
    return fake.disconnects == 1


async def usage_today(app: AppClient) -> UsageCounters:
    report = await read_usage(await get_async_client(), app.user, "day", datetime.now(UTC).date())
    return report.totals


# --- streams that complete ------------------------------------------------------------------


async def test_stream_equals_the_buffered_answer(make_app: AppFactory, upstream: Upstream) -> None:
    async with serving(make_app, upstream) as app:
        buffered = await app.chat(chat_body(upstream.model, stream=False))
        streamed = await app.chat(chat_body(upstream.model, stream=True))
    assert buffered.status_code == 200, buffered.text
    answer = buffered.json()["choices"][0]
    assert PROMPT in answer["message"]["content"]  # the fake's echo came back

    sse = Sse.of(streamed)
    sse.assert_well_formed()
    assert sse.text == answer["message"]["content"]
    assert len(sse.chunks) > 2, "the answer must arrive in pieces"
    assert sse.chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert finish_reasons(sse.chunks) == [answer["finish_reason"]]
    assert {c["id"] for c in sse.chunks} == {sse.chunks[0]["id"]}
    assert {c["model"] for c in sse.chunks} == {upstream.model}
    # Without stream_options.include_usage, no usage chunk (and no usage on any chunk).
    assert all(c["choices"] and c.get("usage") is None for c in sse.chunks)
    assert streamed.headers["x-baton-provider"] == upstream.provider
    assert streamed.headers["x-baton-model"] == upstream.model
    assert streamed.headers["x-request-id"].startswith("req_")
    assert streamed.headers["x-request-id"] != buffered.headers["x-request-id"]
    assert len(upstream.fake.requests) == 2  # both went upstream


async def test_include_usage_adds_the_providers_usage_as_a_last_chunk(
    make_app: AppFactory, upstream: Upstream
) -> None:
    # Counts no estimate could produce, so they can only be the provider's.
    upstream.script_text("Counting is the provider's job", 37, 11)
    async with serving(make_app, upstream) as app:
        response = await app.chat(
            chat_body(upstream.model, stream=True, stream_options={"include_usage": True})
        )
        counted = await usage_today(app)
    sse = Sse.of(response)
    sse.assert_well_formed()
    *content, last = sse.chunks
    assert last["choices"] == []
    assert last["usage"]["prompt_tokens"] == 37
    assert last["usage"]["completion_tokens"] == 11
    assert last["usage"]["total_tokens"] == 48
    assert all(chunk["choices"] and chunk.get("usage") is None for chunk in content)
    assert sse.text == "Counting is the provider's job"
    assert (counted.requests, counted.errors) == (1, 0)
    assert (counted.prompt_tokens, counted.completion_tokens) == (37, 11)


async def test_tool_calls_stream_as_openai_tool_call_deltas(
    make_app: AppFactory, upstream: Upstream
) -> None:
    upstream.script_tool_calls()
    async with serving(make_app, upstream) as app:
        response = await app.chat(chat_body(upstream.model, stream=True, tools=TOOLS))
    sse = Sse.of(response)
    sse.assert_well_formed()
    calls = tool_calls(sse.chunks)
    assert sorted(calls) == [0, 1]
    assert [calls[i]["name"] for i in (0, 1)] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["arguments"]) == WEATHER
    assert json.loads(calls[1]["arguments"]) == CLOCK
    assert calls[0]["id"] and calls[1]["id"] and calls[0]["id"] != calls[1]["id"]
    # Each call opens with its id, type and name, as OpenAI's first delta of a call does.
    openings = [
        delta
        for chunk in sse.chunks
        for delta in chunk["choices"][0]["delta"].get("tool_calls") or []
        if delta.get("id")
    ]
    assert [(d["type"], d["function"]["name"]) for d in openings] == [
        ("function", "get_weather"),
        ("function", "get_time"),
    ]
    assert finish_reasons(sse.chunks) == ["tool_calls"]


async def test_v2_chat_streams_too(make_app: AppFactory, request: pytest.FixtureRequest) -> None:
    upstream = upstream_for("openai", request)
    async with serving(make_app, upstream) as app:
        response = await app.chat(chat_body(upstream.model, stream=True), path="/v2/chat")
    sse = Sse.of(response)
    sse.assert_well_formed()
    assert PROMPT in sse.text
    assert response.headers["x-baton-provider"] == "openai"


# --- streams that break -------------------------------------------------------------------


async def test_a_stream_broken_midway_ends_with_an_error_event_and_is_counted(
    make_app: AppFactory, upstream: Upstream
) -> None:
    answer = "The strings come in first and then the brass joins them"
    upstream.script_text(answer, 9, 11)
    # Two content pieces get out before the connection drops.
    upstream.fake.inject(Fault(break_after_chunks=upstream.events_before_text + 2))
    async with serving(make_app, upstream) as app:
        response = await app.chat(chat_body(upstream.model, stream=True))
        counted = await usage_today(app)
    sse = Sse.of(response)
    error = sse.assert_broken()
    assert error["type"] == "upstream_error"
    # What came before the break reached the client, and was not taken for the whole.
    assert sse.text and answer.startswith(sse.text) and sse.text != answer
    assert not finish_reasons(sse.chunks)
    assert (counted.requests, counted.errors) == (1, 1)
    # The provider never reported usage: both sides are estimated, never zero.
    assert counted.prompt_tokens > 0 and counted.completion_tokens > 0


@pytest.mark.parametrize(
    ("provider", "status"),
    [
        ("openai", 429),
        ("openai", 503),
        ("anthropic", 429),
        ("anthropic", 529),
        ("google", 429),
        ("google", 503),
    ],
)
async def test_an_upstream_error_before_the_first_chunk_is_a_plain_json_error(
    make_app: AppFactory, request: pytest.FixtureRequest, provider: str, status: int
) -> None:
    upstream = upstream_for(provider, request)
    upstream.fake.inject(Fault(status=status), times=3)  # every retry fails too
    async with serving(make_app, upstream, BATON_TIME_SCALE="0.01") as app:
        response = await app.chat(chat_body(upstream.model, stream=True))
        counted = await usage_today(app)
    # An overloaded or rate-limited provider is Baton's upstream being unavailable.
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert_valid("ErrorResponse", body)
    assert body["error"]["type"] == "upstream_error"
    assert response.headers["x-request-id"]
    assert (counted.requests, counted.errors) == (1, 1)


# --- waiting: keep-alives and stalls ---------------------------------------------------------


async def test_a_slow_first_chunk_is_preceded_by_keep_alive_comments(
    make_app: AppFactory, upstream: Upstream
) -> None:
    upstream.fake.inject(Fault(delay_s=0.5))
    async with serving(make_app, upstream, BATON_STREAM_KEEPALIVE_S="0.1") as app:
        response = await app.chat(chat_body(upstream.model, stream=True))
    sse = Sse.of(response)
    sse.assert_well_formed()
    first_data = next(i for i, line in enumerate(sse.lines) if line.startswith("data: "))
    assert first_data >= 2, sse.lines[:4]
    assert set(sse.lines[:first_data]) == {": keep-alive"}
    assert ": keep-alive" not in sse.lines[first_data:]  # only while waiting for the model
    assert PROMPT in sse.text


async def test_an_upstream_error_after_keep_alives_is_an_error_event(
    make_app: AppFactory, request: pytest.FixtureRequest
) -> None:
    """Once the status line went out, a late refusal can only travel as an event."""
    upstream = upstream_for("openai", request)
    upstream.fake.inject(Fault(status=503, delay_s=0.4), times=3)  # and every retry
    settings = {"BATON_STREAM_KEEPALIVE_S": "0.1", "BATON_TIME_SCALE": "0.01"}
    async with serving(make_app, upstream, **settings) as app:
        response = await app.chat(chat_body(upstream.model, stream=True))
        counted = await usage_today(app)
    sse = Sse.of(response)
    assert sse.lines[0] == ": keep-alive"
    assert sse.assert_broken()["code"] == "upstream_unavailable"
    assert not sse.chunks
    assert (counted.requests, counted.errors) == (1, 1)


async def test_a_stalled_stream_ends_with_an_error_event(
    make_app: AppFactory, upstream: Upstream
) -> None:
    upstream.fake.inject(Fault(chunk_delay_s=3.0))
    async with serving(make_app, upstream, BATON_STREAM_IDLE_TIMEOUT_S="0.5") as app:
        response = await app.chat(chat_body(upstream.model, stream=True))
        counted = await usage_today(app)
    sse = Sse.of(response)
    error = sse.assert_broken()
    assert error["code"] == "upstream_stream_stalled"
    assert error["type"] == "timeout_error"
    assert sse.chunks, "the first chunk came before the stall"
    assert await upstream_closed(upstream.fake), "the stalled upstream must be hung up on"
    assert (counted.requests, counted.errors) == (1, 1)


async def test_a_first_chunk_that_never_comes_ends_the_stream_as_stalled(
    make_app: AppFactory, upstream: Upstream
) -> None:
    """Before the first chunk the wait is BATON_STREAM_FIRST_CHUNK_TIMEOUT_S, not the idle
    timeout, so a model that thinks long is not cut off by the between-chunks limit."""
    upstream.fake.inject(Fault(delay_s=3.0), times=3)  # every retry stalls too
    env = {
        "BATON_TIME_SCALE": "0.01",
        "BATON_STREAM_KEEPALIVE_S": "0.1",
        "BATON_STREAM_IDLE_TIMEOUT_S": "0.2",
        "BATON_STREAM_FIRST_CHUNK_TIMEOUT_S": "0.8",
    }
    async with serving(make_app, upstream, **env) as app:
        response = await app.chat(chat_body(upstream.model, stream=True))
    sse = Sse.of(response)
    assert sse.lines.count(": keep-alive") >= 3  # it waited past the idle timeout
    assert sse.assert_broken()["code"] == "upstream_stream_stalled"
    assert not sse.chunks


async def test_a_stream_past_its_deadline_ends_with_an_error_event(
    make_app: AppFactory, upstream: Upstream
) -> None:
    """BATON_STREAM_MAX_SECONDS bounds a stream that keeps trickling (and what it costs)."""
    async with serving(make_app, upstream, BATON_STREAM_MAX_SECONDS="1") as app:
        # A first stream pays the SDK's one-time costs outside the measured one.
        Sse.of(await app.chat(chat_body(upstream.model, stream=True))).assert_well_formed()
        upstream.fake.reset()
        upstream.script_text(" ".join(["word"] * 40), 5, 40)
        upstream.fake.inject(Fault(chunk_delay_s=0.1))
        response = await app.chat(chat_body(upstream.model, stream=True))
        counted = await usage_today(app)
    sse = Sse.of(response)
    error = sse.assert_broken()
    assert (error["type"], error["code"]) == ("timeout_error", "deadline_exceeded")
    assert sse.text.startswith("word") and len(sse.text.split()) < 40
    assert await upstream_closed(upstream.fake), "the upstream must be hung up on"
    assert (counted.requests, counted.errors) == (2, 1)  # the warm-up stream, then this
