"""OpenAI's Chat Completions, through the ``openai`` SDK.

Baton's unified request *is* OpenAI's chat format, so most of the mapping is a list of
fields OpenAI takes verbatim (messages with system/developer prompts, images, tool calls
and tool results included). Only three fields are transformed: the output cap, always
sent as ``max_completion_tokens`` (``max_tokens`` is deprecated and refused by reasoning
models; OpenAI needs no default cap), and ``reasoning_effort``, sent only to reasoning
models (the others refuse it).

Answers come back with the catalog id as ``model`` and usage normalised once: OpenAI's
``prompt_tokens`` already include cached tokens and ``completion_tokens`` include
reasoning tokens, which is exactly :class:`~baton.usage.TokenUsage`'s meaning, so the
details only fill the breakdown.

SDK exceptions are translated once, in :func:`_translate`::

    APITimeoutError          -> UpstreamTimeoutError (504)
    APIStatusError           -> error_from_status(status, retry-after, context length)
    APIConnectionError       -> UpstreamUnavailableError (503), e.g. a stream cut midway
    APIError (other)         -> UpstreamError (502), e.g. an error event inside a stream
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import openai
from openai.types import CompletionUsage as OpenAIUsage
from openai.types.chat import ChatCompletion as OpenAICompletion
from openai.types.chat import ChatCompletionChunk as OpenAIChunk
from openai.types.chat import ChatCompletionMessageFunctionToolCall
from openai.types.chat.chat_completion import Choice as OpenAIChoice
from openai.types.chat.chat_completion_chunk import Choice as OpenAIChunkChoice
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCallFunction

from baton.errors import BatonError, UpstreamError, UpstreamTimeoutError
from baton.providers.base import (
    ProviderCall,
    ProviderResult,
    StreamItem,
    error_from_status,
    is_context_length_message,
)
from baton.schema import (
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChoiceDelta,
    ChunkChoice,
    FinishReason,
    FunctionCall,
    ResponseMessage,
    ToolCall,
    ToolCallDelta,
)
from baton.usage import TokenUsage

NAME = "openai"
DEFAULT_BASE_URL = "https://api.openai.com/v1"

# Request fields OpenAI takes exactly as Baton received them: both sides share the schema.
_VERBATIM_FIELDS = frozenset(
    {
        "messages",
        "temperature",
        "top_p",
        "stop",
        "seed",
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "prompt_cache_key",
        "safety_identifier",
    }
)
# Request fields mapped by :func:`request_params` with a transform.
_TRANSFORMED_FIELDS = frozenset({"max_tokens", "max_completion_tokens", "reasoning_effort"})

# OpenAI's stop reasons -> Baton's finish_reason. Today they are the same words; the
# table keeps a reason OpenAI adds later from reaching callers unvetted.
_FINISH_REASONS: Mapping[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "function_call": "function_call",
}


class OpenAIProvider:
    """The adapter for ``openai/*`` models. One instance (one SDK client) per container."""

    name = NAME
    supported_fields: frozenset[str] = (_VERBATIM_FIELDS - {"messages"}) | _TRANSFORMED_FIELDS

    def __init__(self, api_key: str, base_url: str | None = None) -> None:
        # Key and URL are passed explicitly so the SDK never reads OPENAI_API_KEY or
        # OPENAI_BASE_URL itself, and its retries are off: Baton's retry step owns them.
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url or DEFAULT_BASE_URL, max_retries=0
        )

    async def complete(self, call: ProviderCall) -> ProviderResult:
        try:
            answer: OpenAICompletion = await self._client.chat.completions.create(
                **request_params(call), timeout=call.timeout_s
            )
        except openai.APIError as exc:
            raise _translate(exc) from exc
        tokens = normalise_usage(answer.usage)
        return ProviderResult(completion=_completion(answer, call, tokens), tokens=tokens)

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamItem]:
        """Yield chunks as OpenAI sends them, then the usage of the whole answer.

        ``timeout_s`` bounds the connection and each wait for the next chunk; the
        stream's total duration is bounded by the orchestrator's configuration.
        """
        usage: TokenUsage | None = None
        opened: set[int] = set()  # choice indexes whose first delta went out
        finished = False
        try:
            upstream = await self._client.chat.completions.create(
                **request_params(call),
                stream=True,
                stream_options={"include_usage": True},
                timeout=call.timeout_s,
            )
            async with upstream:
                async for chunk in upstream:
                    if chunk.usage is not None:
                        usage = normalise_usage(chunk.usage)
                    if not chunk.choices:  # the closing usage chunk
                        continue
                    yield _chunk(chunk, call.model.id, opened)
                    opened.update(choice.index for choice in chunk.choices)
                    finished = finished or any(c.finish_reason for c in chunk.choices)
        except openai.APIError as exc:
            raise _translate(exc) from exc
        if not finished:
            raise UpstreamError(
                f"{NAME}: the stream ended before the answer was complete", provider=NAME
            )
        if usage is not None:
            yield usage

    async def aclose(self) -> None:
        await self._client.close()


# --- request ----------------------------------------------------------------------------


def request_params(call: ProviderCall) -> dict[str, Any]:
    """The body OpenAI gets for ``call`` (without the streaming switches)."""
    request = call.request
    params = request.model_dump(include=set(_VERBATIM_FIELDS), exclude_none=True)
    params["model"] = call.model.name
    limit = request.output_token_limit
    if limit is not None:
        params["max_completion_tokens"] = limit
    if call.model.reasoning and request.reasoning_effort is not None:
        params["reasoning_effort"] = request.reasoning_effort
    return params


# --- answer -----------------------------------------------------------------------------


def normalise_usage(usage: OpenAIUsage | None) -> TokenUsage:
    """OpenAI's usage in Baton's terms; the totals already mean what TokenUsage means."""
    if usage is None:
        return TokenUsage()
    prompt = usage.prompt_tokens_details
    completion = usage.completion_tokens_details
    return TokenUsage(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        cache_read_tokens=(prompt.cached_tokens or 0) if prompt else 0,
        cache_write_tokens=(prompt.cache_write_tokens or 0) if prompt else 0,
        reasoning_tokens=(completion.reasoning_tokens or 0) if completion else 0,
    )


def _finish_reason(reason: str | None) -> FinishReason:
    return _FINISH_REASONS.get(reason or "stop", "stop")


def _completion(answer: OpenAICompletion, call: ProviderCall, tokens: TokenUsage) -> ChatCompletion:
    return ChatCompletion(
        id=answer.id,
        created=answer.created,
        model=call.model.id,
        choices=[_choice(choice) for choice in answer.choices],
        usage=tokens.to_openai(),
        system_fingerprint=answer.system_fingerprint,
        service_tier=answer.service_tier,
    )


def _choice(choice: OpenAIChoice) -> Choice:
    message = choice.message
    # Baton only sends function tools, so custom tool calls cannot come back.
    tool_calls = [
        ToolCall(
            id=call.id,
            function=FunctionCall(name=call.function.name, arguments=call.function.arguments),
        )
        for call in message.tool_calls or []
        if isinstance(call, ChatCompletionMessageFunctionToolCall)
    ]
    return Choice(
        index=choice.index,
        message=ResponseMessage(
            content=message.content,
            refusal=message.refusal,
            tool_calls=tool_calls or None,
            annotations=[a.model_dump(mode="json") for a in message.annotations or []],
        ),
        finish_reason=_finish_reason(choice.finish_reason),
        logprobs=choice.logprobs.model_dump(mode="json") if choice.logprobs else None,
    )


def _chunk(chunk: OpenAIChunk, model_id: str, opened: set[int]) -> ChatCompletionChunk:
    return ChatCompletionChunk(
        id=chunk.id,
        created=chunk.created,
        model=model_id,
        choices=[_chunk_choice(choice, choice.index not in opened) for choice in chunk.choices],
        system_fingerprint=chunk.system_fingerprint,
        service_tier=chunk.service_tier,
    )


def _chunk_choice(choice: OpenAIChunkChoice, first: bool) -> ChunkChoice:
    delta = choice.delta
    tool_calls = [
        ToolCallDelta(
            index=call.index,
            id=call.id,
            type=call.type,
            function=_function_delta(call.function),
        )
        for call in delta.tool_calls or []
    ]
    return ChunkChoice(
        index=choice.index,
        delta=ChoiceDelta(
            # Every choice opens with the assistant role, as OpenAI's first chunk does.
            role="assistant" if first else None,
            content=delta.content,
            refusal=delta.refusal,
            tool_calls=tool_calls or None,
        ),
        finish_reason=_finish_reason(choice.finish_reason) if choice.finish_reason else None,
        logprobs=choice.logprobs.model_dump(mode="json") if choice.logprobs else None,
    )


def _function_delta(function: ChoiceDeltaToolCallFunction | None) -> dict[str, str] | None:
    """The pieces of a streamed function call OpenAI sent, without the absent ones."""
    if function is None:
        return None
    pieces = {"name": function.name, "arguments": function.arguments}
    return {key: value for key, value in pieces.items() if value is not None}


# --- errors -----------------------------------------------------------------------------


def _translate(exc: openai.APIError) -> BatonError:
    """The one place an SDK exception becomes a Baton error."""
    if isinstance(exc, openai.APITimeoutError):
        return UpstreamTimeoutError(f"{NAME}: the request timed out", provider=NAME)
    if isinstance(exc, openai.APIStatusError):
        message = _upstream_message(exc)
        return error_from_status(
            NAME,
            exc.status_code,
            message,
            retry_after=retry_after_seconds(exc.response.headers),
            context_length=exc.code == "context_length_exceeded"
            or is_context_length_message(message),
        )
    if isinstance(exc, openai.APIConnectionError):
        return error_from_status(NAME, None, "connection to the API failed or broke")
    return UpstreamError(f"{NAME}: {exc.message}", provider=NAME)


def _upstream_message(exc: openai.APIStatusError) -> str:
    """OpenAI's own error message, not the SDK's "Error code: ... - {body}" rendering."""
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return f"HTTP {exc.status_code}"


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds OpenAI asks to wait: ``retry-after-ms`` first, then ``retry-after``.

    Hand-rolled because the SDK's parser is a private client method; OpenAI sends
    delays in seconds, never the HTTP-date form, so that form is not parsed.
    """
    for header, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(header)
        if value is None:
            continue
        try:
            return float(value) / divisor
        except ValueError:
            continue
    return None
