"""Anthropic's answers and stream events as OpenAI's, with usage in Baton's meaning.

The stop reasons map to OpenAI's ``finish_reason`` in :data:`FINISH_REASONS`. Usage is
normalised once (:class:`UsageTally`): Anthropic's ``input_tokens`` exclude cache reads
and writes, so they are added back. Thinking blocks stay upstream (OpenAI's shape has
no place for them); tool-use blocks become tool calls, numbered by OpenAI's tool index
rather than Anthropic's content-block index.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from anthropic.types import (
    InputJSONDelta,
    Message,
    MessageDeltaUsage,
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStopEvent,
    RawMessageStreamEvent,
    TextBlock,
    TextDelta,
    ToolUseBlock,
    Usage,
)

from baton.providers.base import ProviderResult, StreamFrame, single_choice_result
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

# The one table from Anthropic's stop_reason to OpenAI's finish_reason.
FINISH_REASONS: Final[Mapping[str, FinishReason]] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: str | None) -> FinishReason:
    return FINISH_REASONS.get(stop_reason or "end_turn", "stop")


@dataclass
class UsageTally:
    """Usage as Anthropic reports it; later reports (cumulative) replace earlier ones."""

    input: int = 0
    cache_read: int = 0
    cache_write: int = 0
    output: int = 0
    thinking: int = 0

    def update(self, usage: Usage | MessageDeltaUsage) -> None:
        if usage.input_tokens is not None:
            self.input = usage.input_tokens
        if usage.cache_read_input_tokens is not None:
            self.cache_read = usage.cache_read_input_tokens
        if usage.cache_creation_input_tokens is not None:
            self.cache_write = usage.cache_creation_input_tokens
        self.output = usage.output_tokens
        if usage.output_tokens_details is not None:
            self.thinking = usage.output_tokens_details.thinking_tokens

    def normalised(self) -> TokenUsage:
        return TokenUsage(
            input_tokens=self.input + self.cache_read + self.cache_write,
            output_tokens=self.output,
            cache_read_tokens=self.cache_read,
            cache_write_tokens=self.cache_write,
            reasoning_tokens=self.thinking,
        )


def to_result(message: Message, model_id: str) -> ProviderResult:
    """A complete answer; thinking blocks stay upstream (OpenAI's shape has no place)."""
    text = "".join(b.text for b in message.content if isinstance(b, TextBlock))
    tool_calls = [
        ToolCall(id=b.id, function=FunctionCall(name=b.name, arguments=json.dumps(b.input)))
        for b in message.content
        if isinstance(b, ToolUseBlock)
    ]
    tally = UsageTally()
    tally.update(message.usage)
    return single_choice_result(
        model_id,
        ResponseMessage(
            content=text if text or not tool_calls else None,
            tool_calls=tool_calls or None,
        ),
        finish_reason(message.stop_reason),
        tally.normalised(),
    )


class StreamTranslator:
    """Turns Anthropic stream events into OpenAI chunks, one event at a time."""

    def __init__(self, model_id: str) -> None:
        self._frame = StreamFrame(model_id)
        self._tool_index: dict[int, int] = {}  # Anthropic block index -> OpenAI tool index
        self._stop_reason: str | None = None
        self.usage = UsageTally()
        self.finished = False

    def feed(self, event: RawMessageStreamEvent) -> list[ChatCompletionChunk]:
        if isinstance(event, RawMessageStartEvent):
            self.usage.update(event.message.usage)
            return [self._frame.chunk(ChoiceDelta(role="assistant", content=""))]
        if isinstance(event, RawContentBlockStartEvent):
            return self._block_start(event)
        if isinstance(event, RawContentBlockDeltaEvent):
            return self._block_delta(event)
        if isinstance(event, RawMessageDeltaEvent):
            self.usage.update(event.usage)
            self._stop_reason = event.delta.stop_reason or self._stop_reason
            return []
        if isinstance(event, RawMessageStopEvent):
            self.finished = True
            return [self._frame.chunk(ChoiceDelta(), finish_reason(self._stop_reason))]
        return []

    def _block_start(self, event: RawContentBlockStartEvent) -> list[ChatCompletionChunk]:
        block = event.content_block
        if isinstance(block, TextBlock) and block.text:
            return [self._frame.chunk(ChoiceDelta(content=block.text))]
        if isinstance(block, ToolUseBlock):
            index = self._tool_index[event.index] = len(self._tool_index)
            call = ToolCallDelta(
                index=index,
                id=block.id,
                type="function",
                function={"name": block.name, "arguments": ""},
            )
            return [self._frame.chunk(ChoiceDelta(tool_calls=[call]))]
        return []

    def _block_delta(self, event: RawContentBlockDeltaEvent) -> list[ChatCompletionChunk]:
        delta = event.delta
        if isinstance(delta, TextDelta) and delta.text:
            return [self._frame.chunk(ChoiceDelta(content=delta.text))]
        if isinstance(delta, InputJSONDelta) and delta.partial_json:
            index = self._tool_index.get(event.index)
            if index is not None:
                call = ToolCallDelta(index=index, function={"arguments": delta.partial_json})
                return [self._frame.chunk(ChoiceDelta(tool_calls=[call]))]
        return []
