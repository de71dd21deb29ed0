"""The Anthropic adapter: Baton's OpenAI-shaped request to the Messages API and back.

The mapping is data (the tables below) plus small pure functions, so each rule is
stated once and can be read without following control flow:

- system and developer messages become the top-level ``system`` prompt; the rest
  become alternating turns, consecutive same-role messages merged into one turn, and
  tool results become user-role ``tool_result`` blocks;
- ``max_tokens`` is required upstream, so a request without a cap gets
  ``min(model.max_output_tokens, DEFAULT_MAX_TOKENS)`` (plus room for thinking);
- ``reasoning_effort`` becomes thinking: a per-effort ``budget_tokens`` on the models
  whose only thinking mode is a manual budget (:data:`BUDGET_THINKING_MODELS`), adaptive
  thinking with ``output_config.effort`` on every other model (Claude 4.6 deprecates the
  budget, later models reject it);
- the stop reasons map to OpenAI's ``finish_reason`` in :data:`FINISH_REASONS`.

``temperature`` and ``top_p`` are not mapped: the SDK (2.x) speaks API version
2026-10-21, which answers any sampling parameter with a 400 on every model, so they
are left out of ``supported_fields`` and the orchestrator reports them as dropped.

Usage is normalised once (:class:`_UsageTally`): Anthropic's ``input_tokens`` exclude
cache reads and writes, so they are added back. SDK and transport exceptions are
translated once, in :func:`_translate`.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import anthropic
import httpx2
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

from baton.errors import (
    BatonError,
    InvalidRequestError,
    UnsupportedParameterError,
    UpstreamError,
    UpstreamTimeoutError,
)
from baton.providers.base import (
    ProviderCall,
    ProviderResult,
    StreamItem,
    error_from_status,
    is_context_length_message,
    new_completion_id,
    now_seconds,
)
from baton.schema import (
    AssistantMessage,
    AudioPart,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChoiceDelta,
    ChunkChoice,
    DeveloperMessage,
    FilePart,
    FinishReason,
    FunctionCall,
    ImagePart,
    NamedToolChoice,
    ReasoningEffort,
    ResponseFormat,
    ResponseMessage,
    SystemMessage,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    ToolMessage,
    UserMessage,
    message_text,
)
from baton.schema import Message as RequestMessage
from baton.usage import TokenUsage

PROVIDER: Final = "anthropic"
# Passed explicitly when no base URL is configured, so the SDK never falls back to
# ANTHROPIC_BASE_URL or a profile on disk behind Baton's back.
DEFAULT_BASE_URL: Final = "https://api.anthropic.com"
# Anthropic requires max_tokens; a caller who sets no cap gets this much answer.
DEFAULT_MAX_TOKENS: Final = 4096
MIN_THINKING_BUDGET: Final = 1024  # the API's floor for budget_tokens

# Tokens of thinking per effort level: the budget in manual mode, and in both modes the
# headroom added to the default max_tokens so thinking does not eat the answer.
THINKING_BUDGETS: Final[Mapping[str, int]] = {
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 16384,
    "xhigh": 32768,
}
# OpenAI effort -> Anthropic ``output_config.effort`` (adaptive thinking); Anthropic
# has no "minimal".
ADAPTIVE_EFFORTS: Final[Mapping[str, str]] = {
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "xhigh",
}

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

# An ``error`` event inside a stream arrives on an HTTP 200; its ``error.type`` says
# which status the same failure has before a stream starts.
ERROR_TYPE_STATUS: Final[Mapping[str, int]] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

TOOL_CHOICES: Final[Mapping[str, str]] = {"auto": "auto", "required": "any", "none": "none"}
FORCED_TOOL_CHOICES: Final = frozenset({"any", "tool"})
IMAGE_MEDIA_TYPES: Final = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


# Name prefixes (dated ids share them) of the models whose only thinking mode is a
# manual budget. The catalog does not record the thinking mode, so it is kept here;
# any other model gets adaptive thinking.
BUDGET_THINKING_MODELS: Final = (
    "claude-haiku-4-5",
    "claude-sonnet-4-5",
    "claude-opus-4-5",
    "claude-opus-4-1",
)


# --- request -----------------------------------------------------------------------------


def build_request(call: ProviderCall) -> dict[str, Any]:
    """The keyword arguments for ``messages.create``: a JSON-shaped dict, as on the wire."""
    request, model = call.request, call.model
    max_tokens = _max_tokens(request, model.max_output_tokens)
    system, turns = convert_messages(request.messages)
    choice = _tool_choice(request.tool_choice, request.parallel_tool_calls)
    # Thinking cannot be combined with a forced tool call; the caller's choice wins.
    forced = choice is not None and choice["type"] in FORCED_TOOL_CHOICES
    effort_level = None if forced else request.reasoning_effort
    budget_mode = model.name.startswith(BUDGET_THINKING_MODELS)
    thinking, effort = _thinking(effort_level, budget_mode, max_tokens)

    params: dict[str, Any] = {"model": model.name, "max_tokens": max_tokens, "messages": turns}
    if system:
        params["system"] = system
    if request.stop_sequences:
        params["stop_sequences"] = request.stop_sequences
    if request.tools:
        params["tools"] = [_tool(t) for t in request.tools]
        if choice is not None:
            params["tool_choice"] = choice
    if thinking is not None:
        params["thinking"] = thinking
    output_config = _output_config(effort, request.response_format)
    if output_config:
        params["output_config"] = output_config
    user_id = request.safety_identifier or request.user
    if user_id:
        params["metadata"] = {"user_id": user_id}
    return params


def _max_tokens(request: ChatCompletionRequest, model_limit: int) -> int:
    """The caller's cap (clamped to the model's), else the default plus thinking room."""
    if request.output_token_limit is not None:
        return min(request.output_token_limit, model_limit)
    effort = request.reasoning_effort
    headroom = THINKING_BUDGETS.get(effort, 0) if effort else 0
    return min(model_limit, DEFAULT_MAX_TOKENS + headroom)


def _thinking(
    effort: ReasoningEffort | None, budget_mode: bool, max_tokens: int
) -> tuple[dict[str, Any] | None, str | None]:
    """The ``thinking`` object and the ``output_config.effort`` for an effort level.

    A manual budget must stay below max_tokens and above the API's floor; when the cap
    leaves no room for that, the request goes without thinking rather than failing.
    """
    if effort is None or effort == "none":
        return None, None
    if not budget_mode:
        return {"type": "adaptive"}, ADAPTIVE_EFFORTS[effort]
    budget = min(THINKING_BUDGETS[effort], max_tokens - 1)
    if budget < MIN_THINKING_BUDGET:
        return None, None
    return {"type": "enabled", "budget_tokens": budget}, None


def _output_config(effort: str | None, response_format: ResponseFormat | None) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if effort is not None:
        config["effort"] = effort
    output_format = _output_format(response_format)
    if output_format is not None:
        config["format"] = output_format
    return config


def _output_format(response_format: ResponseFormat | None) -> dict[str, Any] | None:
    """Structured outputs take a schema; Anthropic has no schema-less JSON mode."""
    if response_format is None or response_format.type == "text":
        return None
    if response_format.type == "json_object":
        raise UnsupportedParameterError(
            "Anthropic models have no schema-less JSON mode; use response_format "
            "{'type': 'json_schema', 'json_schema': {'name': ..., 'schema': {...}}}.",
            param="response_format",
        )
    schema = (response_format.json_schema or {}).get("schema")
    if not isinstance(schema, dict):
        raise InvalidRequestError(
            "response_format.json_schema.schema must be a JSON schema object.",
            param="response_format",
        )
    return {"type": "json_schema", "schema": schema}


def _tool(tool: Tool) -> dict[str, Any]:
    function = tool.function
    spec: dict[str, Any] = {
        "name": function.name,
        "input_schema": function.parameters or {"type": "object", "properties": {}},
    }
    if function.description:
        spec["description"] = function.description
    if function.strict:
        spec["strict"] = True
    return spec


def _tool_choice(choice: ToolChoice | None, parallel: bool | None) -> dict[str, Any] | None:
    """OpenAI's tool_choice and parallel_tool_calls, which Anthropic keeps in one object."""
    if isinstance(choice, NamedToolChoice):
        name = choice.function.get("name")
        if not name:
            raise InvalidRequestError("tool_choice.function.name is required.", param="tool_choice")
        result: dict[str, Any] = {"type": "tool", "name": name}
    elif choice is not None:
        result = {"type": TOOL_CHOICES[choice]}
    elif parallel is False:
        result = {"type": "auto"}
    else:
        return None
    if parallel is False and result["type"] != "none":
        result["disable_parallel_tool_use"] = True
    return result


def convert_messages(messages: Sequence[RequestMessage]) -> tuple[str, list[dict[str, Any]]]:
    """The system prompt and the turns: same-role neighbours merged into one turn."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message, SystemMessage | DeveloperMessage):
            text = message_text(message.content)
            if text:
                system.append(text)
            continue
        role, blocks = _turn(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return "\n\n".join(system), turns


def _turn(message: RequestMessage) -> tuple[str, list[dict[str, Any]]]:
    if isinstance(message, UserMessage):
        if isinstance(message.content, str):
            return "user", _text_blocks(message.content)
        return "user", [block for part in message.content for block in _user_part(part)]
    if isinstance(message, AssistantMessage):
        return "assistant", _assistant_blocks(message)
    if isinstance(message, ToolMessage):
        result = {
            "type": "tool_result",
            "tool_use_id": message.tool_call_id,
            "content": message_text(message.content),
        }
        return "user", [result]
    raise UnsupportedParameterError(
        "Messages with role 'function' (deprecated) are not supported for Anthropic "
        "models; use tool calls and role 'tool'.",
        param="messages",
    )


def _text_blocks(text: str) -> list[dict[str, Any]]:
    # Anthropic rejects empty text blocks; an empty string simply adds nothing.
    return [{"type": "text", "text": text}] if text else []


def _user_part(part: TextPart | ImagePart | AudioPart | FilePart) -> list[dict[str, Any]]:
    if isinstance(part, TextPart):
        return _text_blocks(part.text)
    if isinstance(part, ImagePart):
        return [{"type": "image", "source": image_source(part.image_url.url)}]
    raise UnsupportedParameterError(
        f"Content parts of type '{part.type}' are not supported for Anthropic models.",
        param="messages",
    )


def image_source(url: str) -> dict[str, Any]:
    """A data: URL becomes a base64 source, an http(s) URL a url source."""
    if url.startswith(("https://", "http://")):
        return {"type": "url", "url": url}
    header, sep, data = url.partition(",")
    media_type, _, encoding = header.removeprefix("data:").partition(";")
    if not url.startswith("data:") or not sep or encoding != "base64":
        raise InvalidRequestError(
            "image_url.url must be an http(s) URL or a base64 data: URL.", param="messages"
        )
    if media_type not in IMAGE_MEDIA_TYPES:
        raise InvalidRequestError(
            f"Image type '{media_type}' is not supported; use one of "
            f"{', '.join(sorted(IMAGE_MEDIA_TYPES))}.",
            param="messages",
        )
    return {"type": "base64", "media_type": media_type, "data": data}


def _assistant_blocks(message: AssistantMessage) -> list[dict[str, Any]]:
    if message.function_call is not None:
        raise UnsupportedParameterError(
            "Assistant 'function_call' (deprecated) is not supported for Anthropic models; "
            "use 'tool_calls'.",
            param="messages",
        )
    blocks = _text_blocks(message_text(message.content) or message.refusal or "")
    for call in message.tool_calls or []:
        blocks.append(
            {
                "type": "tool_use",
                "id": call.id,
                "name": call.function.name,
                "input": _tool_input(call.function.arguments),
            }
        )
    return blocks


def _tool_input(arguments: str) -> dict[str, Any]:
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(
            "An assistant tool call's function.arguments is not valid JSON.", param="messages"
        ) from exc
    if not isinstance(value, dict):
        raise InvalidRequestError(
            "An assistant tool call's function.arguments must be a JSON object.",
            param="messages",
        )
    return value


# --- response ----------------------------------------------------------------------------


def finish_reason(stop_reason: str | None) -> FinishReason:
    return FINISH_REASONS.get(stop_reason or "end_turn", "stop")


@dataclass
class _UsageTally:
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
    tally = _UsageTally()
    tally.update(message.usage)
    tokens = tally.normalised()
    completion = ChatCompletion(
        id=new_completion_id(),
        created=now_seconds(),
        model=model_id,
        choices=[
            Choice(
                index=0,
                message=ResponseMessage(
                    content=text if text or not tool_calls else None,
                    tool_calls=tool_calls or None,
                ),
                finish_reason=finish_reason(message.stop_reason),
            )
        ],
        usage=tokens.to_openai(),
    )
    return ProviderResult(completion=completion, tokens=tokens)


class _StreamTranslator:
    """Turns Anthropic stream events into OpenAI chunks, one event at a time."""

    def __init__(self, model_id: str) -> None:
        self._id = new_completion_id()
        self._created = now_seconds()
        self._model = model_id
        self._tool_index: dict[int, int] = {}  # Anthropic block index -> OpenAI tool index
        self._stop_reason: str | None = None
        self.usage = _UsageTally()
        self.finished = False

    def feed(self, event: RawMessageStreamEvent) -> list[ChatCompletionChunk]:
        if isinstance(event, RawMessageStartEvent):
            self.usage.update(event.message.usage)
            return [self._chunk(ChoiceDelta(role="assistant", content=""))]
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
            return [self._chunk(ChoiceDelta(), finish_reason(self._stop_reason))]
        return []

    def _block_start(self, event: RawContentBlockStartEvent) -> list[ChatCompletionChunk]:
        block = event.content_block
        if isinstance(block, TextBlock) and block.text:
            return [self._chunk(ChoiceDelta(content=block.text))]
        if isinstance(block, ToolUseBlock):
            index = self._tool_index[event.index] = len(self._tool_index)
            call = ToolCallDelta(
                index=index,
                id=block.id,
                type="function",
                function={"name": block.name, "arguments": ""},
            )
            return [self._chunk(ChoiceDelta(tool_calls=[call]))]
        return []

    def _block_delta(self, event: RawContentBlockDeltaEvent) -> list[ChatCompletionChunk]:
        delta = event.delta
        if isinstance(delta, TextDelta) and delta.text:
            return [self._chunk(ChoiceDelta(content=delta.text))]
        if isinstance(delta, InputJSONDelta) and delta.partial_json:
            index = self._tool_index.get(event.index)
            if index is not None:
                call = ToolCallDelta(index=index, function={"arguments": delta.partial_json})
                return [self._chunk(ChoiceDelta(tool_calls=[call]))]
        return []

    def _chunk(self, delta: ChoiceDelta, finish: FinishReason | None = None) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=self._id,
            created=self._created,
            model=self._model,
            choices=[ChunkChoice(index=0, delta=delta, finish_reason=finish)],
        )


# --- errors --------------------------------------------------------------------------------


def _translate(exc: Exception) -> BatonError:
    """One SDK or transport exception -> Baton's hierarchy (the only place this happens)."""
    if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
        return UpstreamTimeoutError(f"{PROVIDER}: the request timed out", provider=PROVIDER)
    if isinstance(exc, anthropic.APIStatusError):
        message = exc.api_message or f"HTTP {exc.status_code}"
        status = exc.status_code
        if status < 400:  # an error event inside a stream that started with 200
            status = ERROR_TYPE_STATUS.get(exc.type or "", 502)
        return error_from_status(
            PROVIDER,
            status,
            message,
            retry_after=retry_after_seconds(exc.response.headers),
            context_length=is_context_length_message(message),
        )
    if isinstance(exc, anthropic.APIResponseValidationError):
        return UpstreamError(
            f"{PROVIDER}: unexpected response shape",
            provider=PROVIDER,
            upstream_status=exc.status_code,
        )
    # Connection refused or reset, or a stream cut off midway.
    return error_from_status(PROVIDER, None, "connection failed or was interrupted")


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The ``retry-after`` header (seconds or an HTTP date) in seconds.

    Hand-rolled because the SDK's parser is private and tied to its own retry loop.
    """
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# --- the provider --------------------------------------------------------------------------


class AnthropicProvider:
    """Anthropic's Messages API through the official SDK, its own retries off."""

    name = PROVIDER
    supported_fields = frozenset(
        {
            "stop",
            "max_tokens",
            "max_completion_tokens",
            "tools",
            "tool_choice",
            "parallel_tool_calls",
            "response_format",
            "reasoning_effort",
            "safety_identifier",
        }
    )

    def __init__(self, api_key: str, base_url: str | None = None) -> None:
        # Built once per container; Baton's retry step owns retries.
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url or DEFAULT_BASE_URL, max_retries=0
        )

    async def complete(self, call: ProviderCall) -> ProviderResult:
        params = build_request(call)
        try:
            message = await self._client.messages.create(**params, timeout=call.timeout_s)
        except anthropic.APIError as exc:
            raise _translate(exc) from exc
        return to_result(message, call.model.id)

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamItem]:
        params = build_request(call)
        try:
            events = await self._client.messages.create(
                **params, stream=True, timeout=call.timeout_s
            )
        except anthropic.APIError as exc:
            raise _translate(exc) from exc
        translator = _StreamTranslator(call.model.id)
        async with events:
            try:
                async for event in events:
                    for chunk in translator.feed(event):
                        yield chunk
            except (anthropic.APIError, httpx2.HTTPError) as exc:
                raise _translate(exc) from exc
        if not translator.finished:
            raise error_from_status(PROVIDER, None, "the stream ended before message_stop")
        yield translator.usage.normalised()

    async def aclose(self) -> None:
        await self._client.close()
