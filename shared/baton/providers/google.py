"""Google Gemini, through the maintained ``google-genai`` SDK.

``google-generativeai`` is deprecated and past its end of support; ``google-genai``
(``from google import genai``) replaces it. This module is ``baton.providers.google``,
a submodule, so its absolute ``from google import genai`` still reaches Google's
namespace package.

The client is built once per container, pinned so that no environment variable of the
SDK can redirect it (``GOOGLE_GENAI_USE_VERTEXAI``, ``GOOGLE_GEMINI_BASE_URL``,
``GOOGLE_GENAI_API_VERSION``, ``GOOGLE_API_KEY``): Developer API, explicit key, explicit
base URL, API version ``v1beta`` (the SDK's default is ``v1``, which lags behind on
thinking levels and JSON schemas). One adapter call is one HTTP call: SDK retries are
off (``attempts=1``, which also stops its implicit reconnect on aiohttp), as are the
SDK's automatic function calling and automatic continuation (both may send follow-up
requests on their own).

The request mapping is data (the tables below) plus small pure functions; the answer
is read back the same way, with Gemini's stop reasons mapped in one table.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib
import json
import math
import mimetypes
import re
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from contextlib import aclosing, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from google import genai
from google.genai import errors as genai_errors
from google.genai import types

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
    FunctionMessage,
    ImagePart,
    Message,
    NamedToolChoice,
    ReasoningEffort,
    ResponseMessage,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolMessage,
    UserMessage,
    UserPart,
    message_text,
)
from baton.usage import TokenUsage

NAME = "google"
DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/"
API_VERSION = "v1beta"

# --- tables ----------------------------------------------------------------------------

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

_TOOL_CHOICE_MODES: dict[str, types.FunctionCallingConfigMode] = {
    "none": types.FunctionCallingConfigMode.NONE,
    "auto": types.FunctionCallingConfigMode.AUTO,
    "required": types.FunctionCallingConfigMode.ANY,
}

# reasoning_effort -> thinking_level (Gemini 3 and later). Gemini 3 cannot switch
# thinking off, so "none" asks for the least the model allows.
_THINKING_LEVELS: dict[ReasoningEffort, types.ThinkingLevel] = {
    "none": types.ThinkingLevel.MINIMAL,
    "minimal": types.ThinkingLevel.MINIMAL,
    "low": types.ThinkingLevel.LOW,
    "medium": types.ThinkingLevel.MEDIUM,
    "high": types.ThinkingLevel.HIGH,
    "xhigh": types.ThinkingLevel.HIGH,
}
# reasoning_effort -> thinking_budget in tokens (Gemini 2.5), clamped to the model's range.
_THINKING_BUDGETS: dict[ReasoningEffort, int] = {
    "none": 0,
    "minimal": 512,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
    "xhigh": 32768,
}

_AUDIO_MIME_TYPES = {"wav": "audio/wav", "mp3": "audio/mp3"}
# Replayed function calls need a thought signature on Gemini 3; OpenAI-shaped history
# cannot carry the real one, so send the value Google documents for calls that did not
# come from the model ("skip_thought_signature_validator", as its base64 text).
_SKIP_SIGNATURE = base64.urlsafe_b64decode("skip_thought_signature_validator")
# Gemini words its context-window 400 differently from OpenAI: "The input token count
# (...) exceeds the maximum number of tokens allowed (...)".
_GEMINI_CONTEXT_MARKERS = ("input token count", "exceeds the maximum number of tokens")


@dataclass(frozen=True)
class _Family:
    """What differs between Gemini generations in the request we send."""

    thinking: Literal["level", "budget"]
    signs_replayed_calls: bool
    budget_range: tuple[int, int] = (0, 24576)
    lowest_level: types.ThinkingLevel = types.ThinkingLevel.MINIMAL


# First match wins; matched against the provider's model name (e.g. gemini-2.5-flash).
_FAMILIES: tuple[tuple[re.Pattern[str], _Family], ...] = (
    (re.compile(r"^gemini-2\.5-pro"), _Family("budget", False, budget_range=(128, 32768))),
    (re.compile(r"^gemini-[12]\."), _Family("budget", False)),
    (re.compile(r"-pro\b"), _Family("level", True, lowest_level=types.ThinkingLevel.LOW)),
    (re.compile(r""), _Family("level", True)),
)


def _family(model_name: str) -> _Family:
    return next(family for pattern, family in _FAMILIES if pattern.search(model_name))


# The SDK sends through httpx, its fork httpx2 or aiohttp, whichever is installed and
# configured, so transport failures are caught from each of them.
def _exception_classes(*names: tuple[str, str]) -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = []
    for module_name, attribute in names:
        try:
            found.append(getattr(importlib.import_module(module_name), attribute))
        except ImportError:
            continue
    return tuple(found)


_TIMEOUT_ERRORS: tuple[type[BaseException], ...] = (
    TimeoutError,
    *_exception_classes(("httpx", "TimeoutException"), ("httpx2", "TimeoutException")),
)
_CONNECTION_ERRORS = _exception_classes(
    ("httpx", "TransportError"), ("httpx2", "TransportError"), ("aiohttp", "ClientError")
)


# --- request mapping ------------------------------------------------------------------


def _decode_base64(data: str, what: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequestError(f"{what} is not valid base64.", param="messages") from exc


_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)(?:;[^,]*)?;base64,(?P<data>.*)$", re.S)


def _inline_part(data_url: str, what: str) -> types.Part | None:
    """A ``data:<mime>;base64,...`` URL as inline bytes; None when it is not one."""
    match = _DATA_URL.match(data_url)
    if match is None:
        return None
    return types.Part(
        inline_data=types.Blob(mime_type=match["mime"], data=_decode_base64(match["data"], what))
    )


def _image_part(url: str) -> types.Part:
    inline = _inline_part(url, "An image data URL")
    if inline is not None:
        return inline
    if not url.startswith(("https://", "http://")):
        raise InvalidRequestError(
            "image_url.url must be an http(s) URL or a base64 data URL.", param="messages"
        )
    # Gemini fetches public URLs itself but wants a MIME type; the extension is the only
    # hint an OpenAI request carries, and JPEG is the common case without one.
    mime_type = mimetypes.guess_type(url.split("?", 1)[0])[0] or "image/jpeg"
    return types.Part(file_data=types.FileData(file_uri=url, mime_type=mime_type))


def _file_part(part: FilePart) -> types.Part:
    data = part.file.get("file_data")
    inline = _inline_part(data, "A file's file_data") if isinstance(data, str) else None
    if inline is None and isinstance(data, str):
        mime_type = mimetypes.guess_type(str(part.file.get("filename", "")))[0]
        if mime_type is not None:
            inline = types.Part(
                inline_data=types.Blob(
                    mime_type=mime_type, data=_decode_base64(data, "A file's file_data")
                )
            )
    if inline is None:
        raise UnsupportedParameterError(
            "Gemini takes files inline only: send file.file_data as a base64 data URL "
            "(file_id is not supported).",
            param="messages",
        )
    return inline


def _user_parts(content: str | Sequence[UserPart]) -> list[types.Part]:
    if isinstance(content, str):
        return [types.Part(text=content)]
    parts: list[types.Part] = []
    for part in content:
        if isinstance(part, TextPart):
            parts.append(types.Part(text=part.text))
        elif isinstance(part, ImagePart):
            parts.append(_image_part(part.image_url.url))
        elif isinstance(part, AudioPart):
            audio = part.input_audio
            blob = types.Blob(
                mime_type=_AUDIO_MIME_TYPES[audio.format],
                data=_decode_base64(audio.data, "input_audio.data"),
            )
            parts.append(types.Part(inline_data=blob))
        else:
            parts.append(_file_part(part))
    return parts


def _arguments(tool_call: ToolCall) -> dict[str, Any]:
    try:
        arguments = json.loads(tool_call.function.arguments or "{}")
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(
            f"tool call {tool_call.id}: function.arguments is not valid JSON.",
            param="messages",
        ) from exc
    if not isinstance(arguments, dict):
        raise InvalidRequestError(
            f"tool call {tool_call.id}: function.arguments must be a JSON object.",
            param="messages",
        )
    return arguments


def _assistant_parts(message: AssistantMessage, family: _Family) -> list[types.Part]:
    text = message_text(message.content)
    parts = [types.Part(text=text)] if text else []
    for position, tool_call in enumerate(message.tool_calls or []):
        signature = _SKIP_SIGNATURE if family.signs_replayed_calls and position == 0 else None
        parts.append(
            types.Part(
                function_call=types.FunctionCall(
                    name=tool_call.function.name, args=_arguments(tool_call)
                ),
                thought_signature=signature,
            )
        )
    return parts


def _function_response(name: str, content: str) -> types.Part:
    # Google's convention for a function's result is the "output" key.
    return types.Part(
        function_response=types.FunctionResponse(name=name, response={"output": content})
    )


@dataclass
class _History:
    """Gemini's ``contents`` built turn by turn, with the system prompt set apart."""

    family: _Family
    system: list[str] = field(default_factory=list)
    contents: list[types.Content] = field(default_factory=list)
    tool_names: dict[str, str] = field(default_factory=dict)  # tool_call_id -> name

    def add(self, role: Literal["user", "model"], parts: list[types.Part]) -> None:
        """Append a turn; consecutive turns of one role merge, as Gemini expects
        (several tool results answer one model turn in a single user turn)."""
        if not parts:
            return
        if self.contents and self.contents[-1].role == role:
            previous = self.contents[-1]
            self.contents[-1] = types.Content(role=role, parts=[*(previous.parts or []), *parts])
        else:
            self.contents.append(types.Content(role=role, parts=parts))

    def message(self, message: Message) -> None:
        if isinstance(message, SystemMessage | DeveloperMessage):
            self.system.append(message_text(message.content))
        elif isinstance(message, UserMessage):
            self.add("user", _user_parts(message.content))
        elif isinstance(message, AssistantMessage):
            for tool_call in message.tool_calls or []:
                self.tool_names[tool_call.id] = tool_call.function.name
            self.add("model", _assistant_parts(message, self.family))
        elif isinstance(message, ToolMessage):
            name = self.tool_names.get(message.tool_call_id)
            if name is None:
                raise InvalidRequestError(
                    f"tool message answers tool_call_id '{message.tool_call_id}', which no "
                    "earlier assistant message called.",
                    param="messages",
                )
            self.add("user", [_function_response(name, message_text(message.content))])
        elif isinstance(message, FunctionMessage):
            self.add("user", [_function_response(message.name, message.content or "")])


def build_contents(
    messages: Sequence[Message], family: _Family
) -> tuple[types.Content | None, list[types.Content]]:
    """OpenAI messages -> Gemini's system instruction and ``contents``."""
    history = _History(family)
    for message in messages:
        history.message(message)
    if not history.contents:
        raise InvalidRequestError(
            "Gemini needs at least one user or assistant message besides the system prompt.",
            param="messages",
        )
    system = (
        types.Content(parts=[types.Part(text=text) for text in history.system])
        if history.system
        else None
    )
    return system, history.contents


def _tools(request: ChatCompletionRequest) -> types.ToolListUnion | None:
    if not request.tools:
        return None
    declarations = [
        types.FunctionDeclaration(
            name=tool.function.name,
            description=tool.function.description,
            parameters_json_schema=tool.function.parameters,
        )
        for tool in request.tools
    ]
    return [types.Tool(function_declarations=declarations)]


def _tool_config(request: ChatCompletionRequest) -> types.ToolConfig | None:
    choice = request.tool_choice
    if choice is None or not request.tools:
        return None
    if isinstance(choice, NamedToolChoice):
        name = choice.function.get("name")
        if not name:
            raise InvalidRequestError("tool_choice.function.name is required.", param="tool_choice")
        calling = types.FunctionCallingConfig(
            mode=types.FunctionCallingConfigMode.ANY, allowed_function_names=[name]
        )
    else:
        calling = types.FunctionCallingConfig(mode=_TOOL_CHOICE_MODES[choice])
    return types.ToolConfig(function_calling_config=calling)


def thinking_config(model_name: str, effort: ReasoningEffort | None) -> types.ThinkingConfig | None:
    """reasoning_effort -> Gemini's thinking controls for this model's generation."""
    if effort is None:
        return None
    family = _family(model_name)
    if family.thinking == "budget":
        low, high = family.budget_range
        budget = min(max(_THINKING_BUDGETS[effort], low), high)
        return types.ThinkingConfig(thinking_budget=budget, include_thoughts=False)
    level = _THINKING_LEVELS[effort]
    if level == types.ThinkingLevel.MINIMAL:
        level = family.lowest_level
    return types.ThinkingConfig(thinking_level=level, include_thoughts=False)


def _response_format(request: ChatCompletionRequest) -> dict[str, Any]:
    response_format = request.response_format
    if response_format is None or response_format.type == "text":
        return {}
    schema = (response_format.json_schema or {}).get("schema")
    return {"response_mime_type": "application/json", "response_json_schema": schema}


def build_config(call: ProviderCall, system: types.Content | None) -> types.GenerateContentConfig:
    """The request's options as Gemini's ``GenerateContentConfig``."""
    request = call.request
    limit = request.output_token_limit
    return types.GenerateContentConfig(
        system_instruction=system,
        temperature=request.temperature,
        top_p=request.top_p,
        max_output_tokens=None if limit is None else min(limit, call.model.max_output_tokens),
        stop_sequences=request.stop_sequences or None,
        seed=request.seed,
        tools=_tools(request),
        tool_config=_tool_config(request),
        thinking_config=thinking_config(call.model.name, request.reasoning_effort),
        **_response_format(request),
        # One adapter call is one HTTP call: no SDK-driven follow-up requests.
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        automatic_continuation=False,
        http_options=types.HttpOptions(timeout=max(1, math.ceil(call.timeout_s * 1000))),
    )


# --- answer mapping --------------------------------------------------------------------


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
    tokens = token_usage(response.usage_metadata)
    # OpenAI's content is null beside tool calls, and a string (maybe empty) otherwise.
    content = output.text or (None if tool_calls else "")
    message = ResponseMessage(content=content, tool_calls=tool_calls or None)
    completion = ChatCompletion(
        id=completion_id,
        created=now_seconds(),
        model=call.model.id,
        choices=[
            Choice(
                index=0,
                message=message,
                finish_reason=finish_reason(output.reason, bool(tool_calls)),
            )
        ],
        usage=tokens.to_openai(),
    )
    return ProviderResult(completion=completion, tokens=tokens)


@dataclass
class _ChunkWriter:
    """Turns Gemini stream chunks into OpenAI chunks, keeping what spans chunks."""

    call: ProviderCall
    completion_id: str = field(default_factory=new_completion_id)
    created: int = field(default_factory=now_seconds)
    response_key: str | None = None
    tool_calls: int = 0
    reason: str | None = None
    usage: types.GenerateContentResponseUsageMetadata | None = None

    def chunk(self, delta: ChoiceDelta, finish: FinishReason | None = None) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=self.completion_id,
            created=self.created,
            model=self.call.model.id,
            choices=[ChunkChoice(index=0, delta=delta, finish_reason=finish)],
        )

    def read(self, response: types.GenerateContentResponse) -> Iterator[ChatCompletionChunk]:
        if self.response_key is None:
            self.response_key = response.response_id or self.completion_id
            yield self.chunk(ChoiceDelta(role="assistant", content=""))
        output = _read(response)
        if output.text:
            yield self.chunk(ChoiceDelta(content=output.text))
        for fc in output.calls:
            index = self.tool_calls
            self.tool_calls += 1
            # As OpenAI streams a call: id and name first, then the arguments.
            yield self.chunk(
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
            yield self.chunk(
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
        yield self.chunk(ChoiceDelta(), finish_reason(self.reason, self.tool_calls > 0))
        if self.usage is not None:
            yield token_usage(self.usage)


# --- errors ----------------------------------------------------------------------------


def _retry_after(exc: genai_errors.APIError) -> float | None:
    """The wait Gemini asks for: the retry-after header, else the RetryInfo detail."""
    headers = getattr(exc.response, "headers", None)
    header = headers.get("retry-after") if headers is not None else None
    if header is not None:
        try:
            return float(header)
        except ValueError:
            pass  # an HTTP date; the body's RetryInfo is more precise anyway
    body = exc.details if isinstance(exc.details, dict) else {}
    for detail in body.get("error", body).get("details") or []:
        if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = str(detail.get("retryDelay", "")).removesuffix("s")
            try:
                return float(delay)
            except ValueError:
                return None
    return None


def translate_api_error(exc: genai_errors.APIError) -> BatonError:
    """An HTTP error status from Gemini in Baton's hierarchy."""
    message = exc.message or str(exc.status or "error")
    lowered = message.lower()
    context_length = is_context_length_message(message) or any(
        marker in lowered for marker in _GEMINI_CONTEXT_MARKERS
    )
    return error_from_status(
        NAME,
        exc.code,
        message,
        retry_after=_retry_after(exc),
        context_length=context_length,
    )


@contextmanager
def _upstream_errors() -> Iterator[None]:
    """Translate the SDK's and transports' exceptions once, at this boundary."""
    try:
        yield
    except genai_errors.APIError as exc:
        raise translate_api_error(exc) from exc
    except _TIMEOUT_ERRORS as exc:
        raise UpstreamTimeoutError(
            f"{NAME}: no answer within the request's deadline", provider=NAME
        ) from exc
    except _CONNECTION_ERRORS as exc:
        raise error_from_status(NAME, None, f"connection failed ({type(exc).__name__})") from exc
    except genai_errors.UnknownApiResponseError as exc:
        raise UpstreamError(f"{NAME}: unreadable response", provider=NAME) from exc


# --- the adapter -----------------------------------------------------------------------


class GoogleProvider:
    """Gemini models (``google/<model>``) through ``client.aio.models``."""

    name = NAME
    supported_fields = frozenset(
        {
            "temperature",
            "top_p",
            "stop",
            "seed",
            "max_tokens",
            "max_completion_tokens",
            "tools",
            "tool_choice",
            "response_format",
            "reasoning_effort",
        }
    )

    def __init__(self, api_key: str, base_url: str | None = None) -> None:
        self._client = genai.Client(
            vertexai=False,
            api_key=api_key,
            http_options=types.HttpOptions(
                base_url=base_url or DEFAULT_BASE_URL,
                api_version=API_VERSION,
                retry_options=types.HttpRetryOptions(attempts=1),
            ),
        )

    def _prepare(
        self, call: ProviderCall
    ) -> tuple[list[types.Content], types.GenerateContentConfig]:
        system, contents = build_contents(call.request.messages, _family(call.model.name))
        return contents, build_config(call, system)

    async def complete(self, call: ProviderCall) -> ProviderResult:
        contents, config = self._prepare(call)
        with _upstream_errors():
            response = await self._client.aio.models.generate_content(
                model=call.model.name, contents=contents, config=config
            )
        return to_completion(response, call)

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamItem]:
        writer = _ChunkWriter(call)
        # aclosing: a consumer that stops early closes the SDK's stream at once. (The
        # SDK's own HTTP response object sits in a reference cycle, so its connection is
        # released at the next garbage collection; nothing public reaches it sooner.)
        async with aclosing(self._responses(call)) as responses:
            async for response in responses:
                for chunk in writer.read(response):
                    yield chunk
        for item in writer.finish():
            yield item

    async def _responses(
        self, call: ProviderCall
    ) -> AsyncGenerator[types.GenerateContentResponse, None]:
        """The SDK's stream with errors translated; only the SDK's steps are guarded,
        so nothing thrown into this generator by its consumer is rewritten."""
        contents, config = self._prepare(call)
        with _upstream_errors():
            responses = await self._client.aio.models.generate_content_stream(
                model=call.model.name, contents=contents, config=config
            )
        sdk_stream = cast(AsyncGenerator[types.GenerateContentResponse, None], responses)
        async with aclosing(sdk_stream):
            while True:
                with _upstream_errors():
                    try:
                        response = await anext(sdk_stream)
                    except StopAsyncIteration:
                        return
                yield response

    async def aclose(self) -> None:
        await self._client.aio.aclose()
        self._client.close()
