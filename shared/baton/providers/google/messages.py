"""OpenAI messages as Gemini's system instruction and ``contents``.

System and developer messages become the system instruction; the rest become turns of
role ``user`` or ``model``, consecutive turns of one role merged (Gemini expects
alternation, and several tool results answer one model turn in a single user turn).
Tool results become ``functionResponse`` parts, named by looking up the assistant
message that called them, since OpenAI's tool messages carry only the call's id.
Images, audio and files go inline as bytes, or as a URL Gemini fetches itself.
"""

from __future__ import annotations

import base64
import binascii
import json
import mimetypes
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from google.genai import types

from baton.errors import InvalidRequestError, UnsupportedParameterError
from baton.providers.google.request import Family
from baton.schema import (
    AssistantMessage,
    AudioPart,
    DeveloperMessage,
    FilePart,
    FunctionMessage,
    ImagePart,
    Message,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolMessage,
    UserMessage,
    UserPart,
    message_text,
)

_AUDIO_MIME_TYPES = {"wav": "audio/wav", "mp3": "audio/mp3"}
# Replayed function calls need a thought signature on Gemini 3; OpenAI-shaped history
# cannot carry the real one, so send the value Google documents for calls that did not
# come from the model ("skip_thought_signature_validator", as its base64 text).
_SKIP_SIGNATURE = base64.urlsafe_b64decode("skip_thought_signature_validator")


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


def _assistant_parts(message: AssistantMessage, family: Family) -> list[types.Part]:
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

    family: Family
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
    messages: Sequence[Message], family: Family
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
