"""A fake OpenAI API for ``POST /v1/chat/completions``, speaking OpenAI's wire protocol.

Baton's OpenAI adapter reaches it through the real ``openai`` SDK (``base_url =
fake.url + "/v1"``), so what is tested is the real request encoding, SSE parsing and
error handling of the SDK, not a mock of it.

What the real API does, and so does this fake:

- a complete answer is one ``chat.completion`` object; a streamed one is SSE lines
  ``data: {chat.completion.chunk}`` ending with ``data: [DONE]``. Chat Completions
  streams carry no ``event:`` names (unlike the Responses API or Anthropic's), so none
  are sent. The first chunk carries ``role: assistant``, tool calls arrive as an opening
  delta (``index``, ``id``, ``type``, ``function.name``, empty ``arguments``) followed by
  argument pieces, the last choice chunk carries ``finish_reason``, and with
  ``stream_options.include_usage`` every chunk has ``"usage": null`` except a final one
  with empty ``choices`` and the usage;
- usage counts cached prompt tokens inside ``prompt_tokens``
  (``prompt_tokens_details.cached_tokens``) and reasoning tokens inside
  ``completion_tokens`` (``completion_tokens_details.reasoning_tokens``);
- stop sequences cut the answer before the sequence (``finish_reason: stop``) and the
  output token limit truncates it (``finish_reason: length``);
- errors use OpenAI's body ``{"error": {"message", "type", "param", "code"}}``; an
  unknown request argument is a 400, a missing bearer key a 401, and a prompt too long
  a 400 with code ``context_length_exceeded``.

By default the answer echoes the last user text (``You said: ...``), so it is
deterministic; ``fake.script(Answer(...))`` sets the next answer (text, tool calls,
finish reason, usage). Faults come from :class:`~tests.fakes.server.FakeServer`.
Token counts are words, which is deterministic and enough for a fake.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from openai.types.chat.completion_create_params import CompletionCreateParamsBase
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import ErrorBody, FakeServer, Fault

# The request arguments the real endpoint accepts, taken from the SDK's own typed
# parameters so the list follows OpenAI rather than being typed out here.
KNOWN_ARGUMENTS = frozenset(
    CompletionCreateParamsBase.__required_keys__
    | CompletionCreateParamsBase.__optional_keys__
    | {"stream"}
)

# Both wordings OpenAI uses for a prompt too long, each with code context_length_exceeded.
CONTEXT_LENGTH_MESSAGES = (
    "This model's maximum context length is 128000 tokens. However, your messages "
    "resulted in 130412 tokens. Please reduce the length of the messages.",
    "Your input exceeds the context window of this model. Please adjust your input and try again.",
)

# status -> (type, code) as the real API sends them.
_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}

_ARGUMENT_PIECE = 8  # characters of tool-call arguments per stream delta


def openai_error_body(status: int, message: str) -> dict[str, Any]:
    """OpenAI's error envelope for ``status``; a context-length message gets its code."""
    kind, code = _ERROR_KINDS.get(status, ("server_error", None))
    param = None
    if status == 400 and message in CONTEXT_LENGTH_MESSAGES:
        code, param = "context_length_exceeded", "messages"
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


@dataclass(frozen=True)
class ScriptedToolCall:
    """A function call the scripted answer makes; ``arguments`` is JSON text."""

    name: str
    arguments: str
    id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:24]}")


@dataclass(frozen=True)
class Answer:
    """What the fake answers to the next request instead of the echo.

    Unset token counts are counted from the request and answer. As in OpenAI's usage,
    ``cached_tokens`` and ``cache_write_tokens`` are part of ``prompt_tokens`` and
    ``reasoning_tokens`` part of ``completion_tokens``.
    """

    text: str | None = None
    tool_calls: tuple[ScriptedToolCall, ...] = ()
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    # End the stream cleanly after this many chunks, with no finish_reason and no
    # [DONE], as a proxy closing the connection politely would.
    end_stream_after: int | None = None


@dataclass(eq=False)
class OpenAIFake(FakeServer):
    """The fake OpenAI server; start it with :meth:`start`, read ``requests``."""

    error_body: ErrorBody = openai_error_body
    _scripts: deque[Answer] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.routes = [Route("/v1/chat/completions", self._chat, methods=["POST"])]

    @property
    def base_url(self) -> str:
        """What the OpenAI SDK takes as ``base_url``."""
        return f"{self.url}/v1"

    def script(self, answer: Answer, times: int = 1) -> None:
        """Answer the next ``times`` requests with ``answer``."""
        with self._lock:
            self._scripts.extend([answer] * times)

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._scripts.clear()

    def _next_answer(self, body: dict[str, Any]) -> Answer:
        with self._lock:
            if self._scripts:
                return self._scripts.popleft()
        return Answer(text=f"You said: {_last_user_text(body)}")

    # --- the endpoint --------------------------------------------------------------------
    async def _chat(self, request: Request) -> Response:
        body = await self.record(request)
        fault = self.next_fault()
        rejected = _rejection(request, body)
        if rejected is not None:
            return rejected
        failed = await self.apply_fault(fault)
        if failed is not None:
            return failed
        answer = self._next_answer(body)
        reply = _Reply.build(body, answer)
        if body.get("stream"):
            return self._stream(fault, body, reply, answer.end_stream_after)
        return JSONResponse(reply.completion())

    def _stream(
        self, fault: Fault, body: dict[str, Any], reply: _Reply, end_after: int | None
    ) -> Response:
        options = body.get("stream_options") or {}
        include_usage = bool(options.get("include_usage"))
        obfuscate = options.get("include_obfuscation", True)
        chunks = reply.chunks(include_usage)
        if obfuscate:
            # Real chunks carry random padding against length side channels.
            chunks = [
                {**c, "obfuscation": uuid.uuid4().hex[: 4 + i % 8]} for i, c in enumerate(chunks)
            ]
        events = [f"data: {_compact(chunk)}\n\n" for chunk in chunks]
        events.append("data: [DONE]\n\n")
        return self.sse(fault, events[:end_after])


def _rejection(request: Request, body: dict[str, Any]) -> Response | None:
    """The 4xx the real API gives before generating anything, or None."""
    authorization = request.headers.get("authorization", "")
    if not authorization.startswith("Bearer ") or len(authorization) <= len("Bearer "):
        return _error(401, "You didn't provide an API key.")
    unknown = sorted(set(body) - KNOWN_ARGUMENTS)
    if unknown:
        return _error(400, f"Unrecognized request argument supplied: {unknown[0]}")
    for required in ("model", "messages"):
        if required not in body:
            return _error(400, f"Missing required parameter: '{required}'.")
    return None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(openai_error_body(status, message), status_code=status)


@dataclass(frozen=True)
class _Reply:
    """One answer, rendered either as a completion or as stream chunks."""

    id: str
    created: int
    model: str
    text: str | None
    tool_calls: tuple[ScriptedToolCall, ...]
    finish_reason: str
    usage: dict[str, Any]

    @classmethod
    def build(cls, body: dict[str, Any], answer: Answer) -> _Reply:
        text, finish = answer.text, answer.finish_reason
        if text is not None:
            text, cut = _apply_limits(text, body)
            finish = finish or cut
        finish = finish or ("tool_calls" if answer.tool_calls else "stop")
        prompt = answer.prompt_tokens
        if prompt is None:
            prompt = max(_count_prompt(body), answer.cached_tokens)
        completion = answer.completion_tokens
        if completion is None:
            arguments = " ".join(call.arguments for call in answer.tool_calls)
            completion = _words(text or "") + _words(arguments) + answer.reasoning_tokens
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {
                "cached_tokens": answer.cached_tokens,
                "cache_write_tokens": answer.cache_write_tokens,
                "audio_tokens": 0,
            },
            "completion_tokens_details": {
                "reasoning_tokens": answer.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        return cls(
            id=f"chatcmpl-{uuid.uuid4().hex[:29]}",
            created=int(time.time()),
            # The API answers with the dated snapshot behind an alias.
            model=f"{body['model']}-2025-08-07",
            text=text,
            tool_calls=answer.tool_calls,
            finish_reason=finish,
            usage=usage,
        )

    def _envelope(self, kind: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": self.model,
            "service_tier": "default",
            "system_fingerprint": "fp_fake0penai",
        }

    def completion(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": self.text,
            "refusal": None,
            "annotations": [],
        }
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in self.tool_calls
            ]
        choice = {
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": self.finish_reason,
        }
        return {**self._envelope("chat.completion"), "choices": [choice], "usage": self.usage}

    def chunks(self, include_usage: bool) -> list[dict[str, Any]]:
        deltas: list[dict[str, Any]] = [
            {"role": "assistant", "content": "" if self.text is not None else None, "refusal": None}
        ]
        deltas += [{"content": piece} for piece in re.findall(r"\s*\S+\s*", self.text or "")]
        for index, call in enumerate(self.tool_calls):
            opening = {"index": index, "id": call.id, "type": "function"}
            deltas.append(
                {"tool_calls": [{**opening, "function": {"name": call.name, "arguments": ""}}]}
            )
            for start in range(0, len(call.arguments), _ARGUMENT_PIECE):
                piece = call.arguments[start : start + _ARGUMENT_PIECE]
                deltas.append({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        deltas.append({})
        finishes = [None] * (len(deltas) - 1) + [self.finish_reason]
        envelope = self._envelope("chat.completion.chunk")
        usage_null = {"usage": None} if include_usage else {}
        chunks = [
            {**envelope, "choices": [_chunk_choice(d, f)], **usage_null}
            for d, f in zip(deltas, finishes, strict=True)
        ]
        if include_usage:
            chunks.append({**envelope, "choices": [], "usage": self.usage})
        return chunks


def _chunk_choice(delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}


def _apply_limits(text: str, body: dict[str, Any]) -> tuple[str, str | None]:
    """Cut ``text`` at the first stop sequence, then at the output token limit."""
    stop = body.get("stop") or []
    for sequence in [stop] if isinstance(stop, str) else stop:
        if sequence in text:
            text = text[: text.index(sequence)]
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit is not None and _words(text) > limit:
        return " ".join(text.split()[:limit]), "length"
    return text, None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "user":
            return _text(message.get("content"))
    return ""


def _count_prompt(body: dict[str, Any]) -> int:
    """Words of every message plus OpenAI's few tokens of framing per message."""
    messages = body.get("messages", [])
    return sum(3 + _words(_text(m.get("content"))) for m in messages) + 3


def _words(text: str) -> int:
    return len(text.split())


def _compact(data: dict[str, Any]) -> str:
    """JSON as the API writes it in SSE lines: no spaces after separators."""
    return json.dumps(data, separators=(",", ":"))
