"""The unified request and response schema: OpenAI's chat-completions wire format.

Every field of OpenAI's ``CreateChatCompletionRequest`` is accepted and typed, so a
request is validated once at the edge and every provider adapter reads the same
objects. Baton's own options live in one namespace, the ``baton`` field, which the
OpenAI SDKs can send with ``extra_body={"baton": {...}}`` and ``/v2/chat`` takes in
its body. Unknown top-level fields are rejected, as OpenAI does.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from baton.config import CacheMode


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    """For nested objects whose fields OpenAI keeps adding; passed through as given."""

    model_config = ConfigDict(extra="allow")


# --- content parts -----------------------------------------------------------------------


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ImageURL(_Strict):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(_Strict):
    type: Literal["image_url"]
    image_url: ImageURL


class InputAudio(_Strict):
    data: str
    format: Literal["wav", "mp3"]


class AudioPart(_Strict):
    type: Literal["input_audio"]
    input_audio: InputAudio


class FilePart(_Strict):
    type: Literal["file"]
    file: dict[str, Any]


class RefusalPart(_Strict):
    type: Literal["refusal"]
    refusal: str


UserPart = Annotated[TextPart | ImagePart | AudioPart | FilePart, Field(discriminator="type")]
AssistantPart = Annotated[TextPart | RefusalPart, Field(discriminator="type")]


# --- messages ------------------------------------------------------------------------------


class FunctionCall(_Strict):
    name: str
    arguments: str


class ToolCall(_Strict):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class SystemMessage(_Strict):
    role: Literal["system"]
    content: str | list[TextPart]
    name: str | None = None


class DeveloperMessage(_Strict):
    role: Literal["developer"]
    content: str | list[TextPart]
    name: str | None = None


class UserMessage(_Strict):
    role: Literal["user"]
    content: str | list[UserPart]
    name: str | None = None


class AssistantMessage(_Strict):
    role: Literal["assistant"]
    content: str | list[AssistantPart] | None = None
    refusal: str | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    function_call: FunctionCall | None = None
    audio: dict[str, Any] | None = None


class ToolMessage(_Strict):
    role: Literal["tool"]
    content: str | list[TextPart]
    tool_call_id: str


class FunctionMessage(_Strict):
    role: Literal["function"]
    content: str | None
    name: str


Message = Annotated[
    SystemMessage
    | DeveloperMessage
    | UserMessage
    | AssistantMessage
    | ToolMessage
    | FunctionMessage,
    Field(discriminator="role"),
]


# --- tools and formats ----------------------------------------------------------------------


class FunctionDefinition(_Strict):
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Strict):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class NamedToolChoice(_Strict):
    type: Literal["function"] = "function"
    function: dict[str, str]


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice


class ResponseFormat(_Open):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class StreamOptions(_Open):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class BatonOptions(_Strict):
    """Baton's own per-request options (the ``baton`` namespace)."""

    cache_mode: CacheMode | None = None
    budget_usd: float | None = Field(default=None, ge=0)
    fallbacks: list[str] | None = None
    timeout_s: float | None = Field(default=None, gt=0)


ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]


class ChatCompletionRequest(_Strict):
    """OpenAI's ``CreateChatCompletionRequest``, plus the ``baton`` namespace."""

    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    # sampling
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    n: int | None = Field(default=None, ge=1, le=128)
    stop: str | list[str] | None = None
    seed: int | None = None
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, int] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    # length
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    # tools and output
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    functions: list[FunctionDefinition] | None = None
    function_call: Literal["none", "auto"] | dict[str, str] | None = None
    response_format: ResponseFormat | None = None
    reasoning_effort: ReasoningEffort | None = None
    verbosity: Literal["low", "medium", "high"] | None = None
    modalities: list[Literal["text", "audio"]] | None = None
    audio: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None
    # streaming
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    # bookkeeping
    user: str | None = None
    safety_identifier: str | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    prompt_cache_options: dict[str, Any] | None = None
    moderation: dict[str, Any] | None = None
    # Baton
    baton: BatonOptions | None = None

    @model_validator(mode="after")
    def _check_consistency(self) -> ChatCompletionRequest:
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("top_logprobs requires logprobs to be true")
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options is only allowed when stream is true")
        return self

    @property
    def output_token_limit(self) -> int | None:
        """The caller's output cap, whichever of the two OpenAI fields carries it."""
        return self.max_completion_tokens or self.max_tokens

    @property
    def stop_sequences(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    @property
    def has_images(self) -> bool:
        return any(
            isinstance(m, UserMessage)
            and isinstance(m.content, list)
            and any(isinstance(p, ImagePart) for p in m.content)
            for m in self.messages
        )

    def explicit_fields(self) -> set[str]:
        """Fields the caller set (not defaults): what a provider must honour or drop."""
        return set(self.model_fields_set)


def message_text(content: str | list[Any] | None) -> str:
    """The text of a message's content, parts joined; non-text parts are skipped."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(getattr(p, "text", "") or getattr(p, "refusal", "") for p in content)


# --- responses ---------------------------------------------------------------------------------

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] | None = None
    annotations: list[dict[str, Any]] = Field(default_factory=list)


class Choice(BaseModel):
    index: int
    message: ResponseMessage
    finish_reason: FinishReason
    logprobs: dict[str, Any] | None = None


class PromptTokensDetails(BaseModel):
    cached_tokens: int = 0
    audio_tokens: int = 0


class CompletionTokensDetails(BaseModel):
    reasoning_tokens: int = 0
    audio_tokens: int = 0
    accepted_prediction_tokens: int = 0
    rejected_prediction_tokens: int = 0


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails = Field(default_factory=PromptTokensDetails)
    completion_tokens_details: CompletionTokensDetails = Field(
        default_factory=CompletionTokensDetails
    )


def _wire(model: BaseModel, required_nulls: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """Dump without None values, except the fields OpenAI sends as explicit nulls.

    OpenAI's schemas reject ``null`` for optional fields but require some nullable
    fields to be present (a choice's ``logprobs``, a message's ``content`` and
    ``refusal``, a chunk's ``finish_reason``); ``required_nulls`` maps a path of nested
    keys (``"choices.message"``) to the keys that must be present there.
    """
    data = model.model_dump(mode="json", exclude_none=True)
    for path, keys in required_nulls.items():
        targets: list[dict[str, Any]] = [data]
        for part in path.split(".") if path else []:
            next_targets: list[dict[str, Any]] = []
            for target in targets:
                value = target.get(part)
                next_targets.extend(value if isinstance(value, list) else [value] if value else [])
            targets = [t for t in next_targets if isinstance(t, dict)]
        for target in targets:
            for key in keys:
                target.setdefault(key, None)
    return data


class ChatCompletion(BaseModel):
    """OpenAI's ``CreateChatCompletionResponse``."""

    _REQUIRED_NULLS: ClassVar[dict[str, tuple[str, ...]]] = {
        "choices": ("logprobs",),
        "choices.message": ("content", "refusal"),
    }

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """The JSON body OpenAI would send."""
        return _wire(self, self._REQUIRED_NULLS)


class ToolCallDelta(BaseModel):
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: dict[str, str] | None = None


class ChoiceDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChunkChoice(BaseModel):
    index: int
    delta: ChoiceDelta
    finish_reason: FinishReason | None = None
    logprobs: dict[str, Any] | None = None


class ChatCompletionChunk(BaseModel):
    """OpenAI's ``CreateChatCompletionStreamResponse``."""

    _REQUIRED_NULLS: ClassVar[dict[str, tuple[str, ...]]] = {"choices": ("finish_reason",)}

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """The JSON of one ``data:`` line, as OpenAI would send it."""
        return _wire(self, self._REQUIRED_NULLS)
