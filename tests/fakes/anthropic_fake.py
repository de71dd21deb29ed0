"""A fake Anthropic Messages API (``POST /v1/messages``) speaking the real wire protocol.

Point the SDK's ``base_url`` at ``fake.url``. By default the fake echoes the last user
text back, so an answer follows from the request; a test scripts the next answer with
``fake.script(...)`` (text, tool calls, thinking, stop reason, usage, a mid-stream error
event). What the real API does is mirrored where an adapter could get it wrong:

- the response is a ``message`` object; streams are SSE with event names
  (``message_start``, ``content_block_start``, ``ping``, ``content_block_delta``,
  ``content_block_stop``, ``message_delta``, ``message_stop``, ``error``);
- ``usage.input_tokens`` excludes cache reads and writes; in a stream the input side
  arrives in ``message_start`` and the cumulative ``output_tokens`` in ``message_delta``;
- errors use ``{"type": "error", "error": {"type", "message"}}`` with the API's error
  type per status (529 is ``overloaded_error``);
- requests are checked for the mistakes the API rejects with 400/401 (no key in
  ``x-api-key`` or ``Authorization: Bearer``, missing ``max_tokens``, empty text blocks,
  tool_use without its tool_result in the next turn, a thinking budget outside
  ``[1024, max_tokens)``, thinking with a forced tool choice, sampling parameters under
  API version 2026-10-21, which the SDK 2.x sends, or temperature with thinking under
  older versions);
- stop sequences and ``max_tokens`` cut the answer, with the matching stop reason.

"Tokens" are whitespace-separated words: deterministic, and good enough for counting.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import ErrorBody, FakeServer, Fault

# The API version from which temperature, top_p and top_k are a 400 on every model.
SAMPLING_REMOVED_IN = "2026-10-21"

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def anthropic_error_body(status: int, message: str) -> dict[str, Any]:
    """Anthropic's error envelope; statuses it has no own type for are ``api_error``."""
    return {
        "type": "error",
        "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message},
        "request_id": f"req_{uuid.uuid4().hex[:24]}",
    }


@dataclass(frozen=True)
class ToolUse:
    """One scripted tool call."""

    name: str
    input: dict[str, Any]
    id: str = field(default_factory=lambda: f"toolu_{uuid.uuid4().hex[:24]}")


@dataclass(frozen=True)
class Answer:
    """What the fake model says next. ``None`` fields are derived from the request."""

    text: str | None = None
    tool_uses: tuple[ToolUse, ...] = ()
    thinking: str | None = None
    stop_reason: str | None = None  # when set, used verbatim (no cutting)
    stop_sequence: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    thinking_tokens: int | None = None
    stream_error: tuple[str, str] | None = None  # (error type, message) after the content


def _words(text: str) -> int:
    return len(text.split())


def _block_texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    texts = []
    for block in content or []:
        if block.get("type") == "text":
            texts.append(block.get("text", ""))
        elif block.get("type") == "tool_result":
            texts.extend(_block_texts(block.get("content")))
    return texts


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "user":
            texts = [t for t in _block_texts(message.get("content")) if t]
            if texts:
                return " ".join(texts)
    return ""


def _input_tokens(body: dict[str, Any]) -> int:
    texts = _block_texts(body.get("system") or [])
    for message in body.get("messages", []):
        texts.extend(_block_texts(message.get("content")))
    return sum(_words(t) for t in texts)


def request_problem(headers: dict[str, str], body: dict[str, Any]) -> tuple[int, str] | None:
    """The status and message the real API would reject this request with, if any."""
    bearer = headers.get("authorization", "").removeprefix("Bearer ").strip()
    if not (headers.get("x-api-key") or bearer):
        return 401, "x-api-key header is required"
    version = headers.get("anthropic-version")
    if not version:
        return 400, "anthropic-version: header is required"
    if version >= SAMPLING_REMOVED_IN:
        for name in ("temperature", "top_p", "top_k"):
            if name in body:
                return (
                    400,
                    f"{name}: sampling parameters are not supported in API version {version}",
                )
    if not isinstance(body.get("model"), str):
        return 400, "model: Field required"
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or max_tokens < 1:
        return 400, "max_tokens: Field required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return 400, "messages: at least one message is required"
    problem = _messages_problem(messages)
    if problem:
        return 400, problem
    return _thinking_problem(body, max_tokens)


def _messages_problem(messages: list[dict[str, Any]]) -> str | None:
    for i, message in enumerate(messages):
        if message.get("role") not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not blocks:
            return f"messages.{i}: all messages must have non-empty content"
        if any(b.get("type") == "text" and not b.get("text") for b in blocks):
            return "messages: text content blocks must be non-empty"
        tool_ids = [b["id"] for b in blocks if b.get("type") == "tool_use"]
        if tool_ids:
            following = messages[i + 1] if i + 1 < len(messages) else {}
            answered = {
                b.get("tool_use_id")
                for b in following.get("content") or []
                if isinstance(b, dict) and b.get("type") == "tool_result"
            }
            missing = [t for t in tool_ids if t not in answered]
            if following.get("role") != "user" or missing:
                return (
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {', '.join(missing or tool_ids)}. Each `tool_use` "
                    "block must have a corresponding `tool_result` block in the next message."
                )
        is_result = [b.get("type") == "tool_result" for b in blocks]
        if is_result != sorted(is_result, reverse=True):
            return f"messages.{i}: tool_result blocks must come first in the content"
    return None


def _thinking_problem(body: dict[str, Any], max_tokens: int) -> tuple[int, str] | None:
    thinking = body.get("thinking") or {}
    if thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            return (
                400,
                "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
            )
        if budget >= max_tokens:
            return 400, "`max_tokens` must be greater than `thinking.budget_tokens`."
    if thinking.get("type") in ("enabled", "adaptive"):
        if body.get("temperature", 1) != 1:
            return 400, "`temperature` may only be set to 1 when thinking is enabled."
        if (body.get("tool_choice") or {}).get("type") in ("any", "tool"):
            return 400, "Thinking may not be enabled when tool_choice forces tool use."
    return None


def _default_answer(body: dict[str, Any]) -> Answer:
    """Echo the last user text; call the tool a forced tool_choice names; think if asked."""
    tools = body.get("tools") or []
    choice = body.get("tool_choice") or {}
    tool_uses: tuple[ToolUse, ...] = ()
    if tools and choice.get("type") in ("any", "tool"):
        tool_uses = (ToolUse(name=choice.get("name") or tools[0]["name"], input={}),)
    thinks = (body.get("thinking") or {}).get("type") in ("enabled", "adaptive")
    return Answer(
        text=None if tool_uses else _last_user_text(body),
        tool_uses=tool_uses,
        thinking="Considering what was asked before answering." if thinks else None,
    )


def _cut(text: str, body: dict[str, Any], room: int) -> tuple[str, str | None, str | None]:
    """Apply stop sequences, then max_tokens: (text, stop_reason, stop_sequence).

    The stop reason is None when the text was not cut.
    """
    for sequence in body.get("stop_sequences") or []:
        at = text.find(sequence)
        if at >= 0:
            return text[:at], "stop_sequence", sequence
    words = re.findall(r"\S+\s*", text)
    if len(words) > room:
        return "".join(words[: max(room, 0)]).rstrip(), "max_tokens", None
    return text, None, None


def render_message(answer: Answer, body: dict[str, Any]) -> dict[str, Any]:
    """The complete ``message`` object the API would answer with."""
    content: list[dict[str, Any]] = []
    thinking_tokens = answer.thinking_tokens
    if answer.thinking is not None:
        content.append(
            {"type": "thinking", "thinking": answer.thinking, "signature": "c2lnbmF0dXJl"}
        )
        thinking_tokens = _words(answer.thinking) if thinking_tokens is None else thinking_tokens
    stop_reason, stop_sequence = answer.stop_reason, answer.stop_sequence
    text, tool_uses = answer.text, answer.tool_uses
    if text is not None and stop_reason is None:
        text, stop_reason, stop_sequence = _cut(
            text, body, body["max_tokens"] - (thinking_tokens or 0)
        )
        if stop_reason is not None:
            tool_uses = ()  # generation stopped inside the text
    if text:
        content.append({"type": "text", "text": text})
    for use in tool_uses:
        content.append({"type": "tool_use", "id": use.id, "name": use.name, "input": use.input})
    if stop_reason is None:
        stop_reason = "tool_use" if tool_uses else "end_turn"
    output_tokens = answer.output_tokens
    if output_tokens is None:
        output_tokens = (
            _words(text or "")
            + (thinking_tokens or 0)
            + sum(_words(json.dumps(u.input)) for u in tool_uses)
        )
    usage: dict[str, Any] = {
        "input_tokens": _input_tokens(body) if answer.input_tokens is None else answer.input_tokens,
        "cache_creation_input_tokens": answer.cache_creation_input_tokens,
        "cache_read_input_tokens": answer.cache_read_input_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": answer.cache_creation_input_tokens,
            "ephemeral_1h_input_tokens": 0,
        },
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }
    if thinking_tokens is not None:
        usage["output_tokens_details"] = {"thinking_tokens": thinking_tokens}
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage,
    }


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def _pieces(text: str, parts: int) -> list[str]:
    size = max(1, -(-len(text) // parts))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _block_events(index: int, block: dict[str, Any]) -> list[str]:
    kind = block["type"]
    start: dict[str, Any]
    if kind == "text":
        start = {"type": "text", "text": ""}
        deltas = [
            {"type": "text_delta", "text": p} for p in re.findall(r"\S+\s*|\s+", block["text"])
        ]
    elif kind == "tool_use":
        start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        # The API opens with an empty partial_json, then the JSON in arbitrary pieces.
        deltas = [{"type": "input_json_delta", "partial_json": ""}] + [
            {"type": "input_json_delta", "partial_json": p}
            for p in _pieces(json.dumps(block["input"]), 3)
        ]
    else:  # thinking
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [
            {"type": "thinking_delta", "thinking": p}
            for p in re.findall(r"\S+\s*", block["thinking"])
        ] + [{"type": "signature_delta", "signature": block["signature"]}]
    return [
        _sse(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": start},
        ),
        *(
            _sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            for d in deltas
        ),
        _sse("content_block_stop", {"type": "content_block_stop", "index": index}),
    ]


def stream_events(message: dict[str, Any], stream_error: tuple[str, str] | None) -> list[str]:
    """The SSE events the API sends for ``message``, in order."""
    usage = message["usage"]
    start_usage = {k: v for k, v in usage.items() if k != "output_tokens_details"}
    start_usage["output_tokens"] = 1  # the API reports a placeholder here
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    events = [_sse("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(message["content"]):
        events.extend(_block_events(index, block))
        if index == 0:
            events.append(_sse("ping", {"type": "ping"}))
    if stream_error is not None:
        kind, text = stream_error
        events.append(_sse("error", {"type": "error", "error": {"type": kind, "message": text}}))
        return events
    delta_usage: dict[str, Any] = {"output_tokens": usage["output_tokens"]}
    if "output_tokens_details" in usage:
        delta_usage["output_tokens_details"] = usage["output_tokens_details"]
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
    events.append(
        _sse("message_delta", {"type": "message_delta", "delta": delta, "usage": delta_usage})
    )
    events.append(_sse("message_stop", {"type": "message_stop"}))
    return events


@dataclass
class AnthropicFake(FakeServer):
    """The fake Messages API. ``script()`` queues answers; the rest echo the request."""

    error_body: ErrorBody = anthropic_error_body
    _answers: deque[Answer] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.routes = [Route("/v1/messages", self._messages, methods=["POST"])]

    def script(self, answer: Answer | None = None, /, **fields: Any) -> Answer:
        """Queue the answer to the next request (an Answer, or its fields as keywords)."""
        scripted = answer or Answer(**fields)
        with self._lock:
            self._answers.append(scripted)
        return scripted

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._answers.clear()

    def _next_answer(self, body: dict[str, Any]) -> Answer:
        with self._lock:
            if self._answers:
                return self._answers.popleft()
        return _default_answer(body)

    async def _messages(self, request: Request) -> Response:
        body = await self.record(request)
        fault: Fault = self.next_fault()
        faulted = await self.apply_fault(fault)
        if faulted is not None:
            return faulted
        problem = request_problem(dict(request.headers), body)
        if problem is not None:
            status, text = problem
            return JSONResponse(self.error_body(status, text), status_code=status)
        answer = self._next_answer(body)
        message = render_message(answer, body)
        if body.get("stream"):
            return self.sse(fault, stream_events(message, answer.stream_error))
        return JSONResponse(message, headers={"request-id": f"req_{uuid.uuid4().hex[:24]}"})
