"""OpenAI messages as Anthropic's ``system`` prompt and alternating turns.

System and developer messages become the top-level ``system`` prompt; the rest become
turns, consecutive same-role messages merged into one turn (Anthropic wants user and
assistant to alternate), and tool results become user-role ``tool_result`` blocks.
Empty text adds nothing, since Anthropic rejects empty text blocks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from baton.errors import InvalidRequestError, UnsupportedParameterError
from baton.schema import (
    AssistantMessage,
    AudioPart,
    DeveloperMessage,
    FilePart,
    ImagePart,
    SystemMessage,
    TextPart,
    ToolMessage,
    UserMessage,
    message_text,
)
from baton.schema import Message as RequestMessage

IMAGE_MEDIA_TYPES: Final = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


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
