"""Gemini's answers and stream chunks as OpenAI's, with usage in Baton's meaning.

Gemini's stop reasons map to OpenAI's ``finish_reason`` in one table
(:data:`_FINISH_REASONS`); a prompt refused before generation has no candidate at all
and ends as ``content_filter``. Thought parts stay upstream (OpenAI's shape has no
place for them). Gemini's function calls carry no id, so one is derived from the
response, the same for the complete and the streamed reading of one response.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

from google.genai import types

from baton.errors import UpstreamError
from baton.providers.base import (
    ProviderCall,
    ProviderResult,
    StreamFrame,
    StreamItem,
    new_completion_id,
    single_choice_result,
)
from baton.providers.google.errors import NAME
from baton.schema import (
    ChatCompletionChunk,
    ChoiceDelta,
    FinishReason,
    FunctionCall,
    ResponseMessage,
    ToolCall,
    ToolCallDelta,
)
from baton.usage import TokenUsage

# Gemini's stop reasons -> OpenAI's finish_reason. Anything unlisted (OTHER,
# MALFORMED_FUNCTION_CALL, ...) ends the answer normally. A "stop" that produced
# function calls becomes "tool_calls" (Gemini says STOP there).
PROMPT_BLOCKED = "PROMPT_BLOCKED"  # Baton's name for a prompt refused before generation
_FINISH_REASONS: dict[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "LANGUAGE": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    "MODEL_ARMOR": "content_filter",
    PROMPT_BLOCKED: "content_filter",
}


def finish_reason(gemini_reason: str | None, has_tool_calls: bool) -> FinishReason:
    """Gemini's stop reason -> OpenAI's, through the one table above."""
    reason = _FINISH_REASONS.get(gemini_reason or "STOP", "stop")
    return "tool_calls" if has_tool_calls and reason == "stop" else reason


def token_usage(meta: types.GenerateContentResponseUsageMetadata | None) -> TokenUsage:
    """Gemini's counts in Baton's meaning (see :mod:`baton.usage`).

    ``prompt_token_count`` already includes ``cached_content_token_count``;
    ``tool_use_prompt_token_count`` (results of server-side tools) is billed as input
    beside it; ``thoughts_token_count`` sits outside ``candidates_token_count``.
    """
    if meta is None:
        return TokenUsage()
    thoughts = meta.thoughts_token_count or 0
    return TokenUsage(
        input_tokens=(meta.prompt_token_count or 0) + (meta.tool_use_prompt_token_count or 0),
        output_tokens=(meta.candidates_token_count or 0) + thoughts,
        cache_read_tokens=meta.cached_content_token_count or 0,
        reasoning_tokens=thoughts,
    )


def tool_call_id(response_key: str, index: int) -> str:
    """Gemini's function calls carry no id; derive one that is the same every time the
    same response is read (``response_key`` is Gemini's responseId when it sends one)."""
    digest = hashlib.sha256(f"{response_key}:{index}".encode()).hexdigest()[:24]
    return f"call_{digest}"


@dataclass(frozen=True)
class _Output:
    """What one Gemini response (or stream chunk) said."""

    text: str
    calls: list[types.FunctionCall]
    reason: str | None


def _read(response: types.GenerateContentResponse) -> _Output:
    candidate = response.candidates[0] if response.candidates else None
    if candidate is None:
        feedback = response.prompt_feedback
        blocked = feedback is not None and feedback.block_reason is not None
        return _Output("", [], PROMPT_BLOCKED if blocked else None)
    parts = candidate.content.parts if candidate.content and candidate.content.parts else []
    text = "".join(part.text for part in parts if part.text and not part.thought)
    calls = [part.function_call for part in parts if part.function_call is not None]
    reason = str(candidate.finish_reason.value) if candidate.finish_reason else None
    return _Output(text, calls, reason)


def _arguments_json(function_call: types.FunctionCall) -> str:
    return json.dumps(function_call.args or {}, ensure_ascii=False)


def to_completion(response: types.GenerateContentResponse, call: ProviderCall) -> ProviderResult:
    """A complete Gemini answer as OpenAI's ``ChatCompletion``."""
    output = _read(response)
    completion_id = new_completion_id()
    key = response.response_id or completion_id
    tool_calls = [
        ToolCall(
            id=tool_call_id(key, index),
            function=FunctionCall(name=fc.name or "", arguments=_arguments_json(fc)),
        )
        for index, fc in enumerate(output.calls)
    ]
    # OpenAI's content is null beside tool calls, and a string (maybe empty) otherwise.
    content = output.text or (None if tool_calls else "")
    message = ResponseMessage(content=content, tool_calls=tool_calls or None)
    return single_choice_result(
        call.model.id,
        message,
        finish_reason(output.reason, bool(tool_calls)),
        token_usage(response.usage_metadata),
        completion_id=completion_id,
    )


@dataclass
class ChunkWriter:
    """Turns Gemini stream chunks into OpenAI chunks, keeping what spans chunks."""

    frame: StreamFrame
    response_key: str | None = None
    tool_calls: int = 0
    reason: str | None = None
    usage: types.GenerateContentResponseUsageMetadata | None = None

    def read(self, response: types.GenerateContentResponse) -> Iterator[ChatCompletionChunk]:
        if self.response_key is None:
            self.response_key = response.response_id or self.frame.id
            yield self.frame.chunk(ChoiceDelta(role="assistant", content=""))
        output = _read(response)
        if output.text:
            yield self.frame.chunk(ChoiceDelta(content=output.text))
        for fc in output.calls:
            index = self.tool_calls
            self.tool_calls += 1
            # As OpenAI streams a call: id and name first, then the arguments.
            yield self.frame.chunk(
                ChoiceDelta(
                    tool_calls=[
                        ToolCallDelta(
                            index=index,
                            id=tool_call_id(self.response_key, index),
                            type="function",
                            function={"name": fc.name or "", "arguments": ""},
                        )
                    ]
                )
            )
            yield self.frame.chunk(
                ChoiceDelta(
                    tool_calls=[
                        ToolCallDelta(index=index, function={"arguments": _arguments_json(fc)})
                    ]
                )
            )
        self.reason = output.reason or self.reason
        self.usage = response.usage_metadata or self.usage

    def finish(self) -> Iterator[StreamItem]:
        if self.reason is None:
            raise UpstreamError(
                f"{NAME}: the stream ended before the model finished its answer",
                provider=NAME,
            )
        yield self.frame.chunk(ChoiceDelta(), finish_reason(self.reason, self.tool_calls > 0))
        if self.usage is not None:
            yield token_usage(self.usage)
