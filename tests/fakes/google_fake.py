"""A fake Google Gemini API speaking the Developer API's REST wire protocol.

The ``google-genai`` SDK (pointed here with ``HttpOptions(base_url=fake.url)``) posts to
``/{api_version}/models/{model}:generateContent`` and, for streams,
``/{api_version}/models/{model}:streamGenerateContent?alt=sse``. Answers follow the
real API byte for byte where it matters to a client:

- bodies are ``GenerateContentResponse`` JSON in camelCase (``candidates``,
  ``finishReason``, ``usageMetadata`` with ``cachedContentTokenCount`` and
  ``thoughtsTokenCount``, ``modelVersion``, ``responseId``);
- streams are SSE events ``data: {json}\\r\\n\\r\\n`` with no ``event:`` names and no
  end marker (Gemini sends neither); intermediate chunks carry only the prompt count,
  the last one carries ``finishReason`` and the full usage;
- function calls come as whole ``functionCall`` parts without ids, all in one chunk,
  the first with a ``thoughtSignature`` as Gemini 3 sends it;
- errors are ``{"error": {"code", "message", "status", "details"}}``; a wait is stated
  in a ``google.rpc.RetryInfo`` detail (and, per :class:`Fault`, a ``retry-after``
  header).

By default the answer is derived from the request: ``"echo: <last user text>"``,
cut at the first stop sequence and at ``maxOutputTokens`` words (then ``MAX_TOKENS``).
``fake.script(...)`` sets the next answer instead (text, function calls, finish reason,
usage). ``fake.requests`` records every request body as the SDK sent it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import ErrorBody, FakeServer, Fault

# google.rpc.Code names Gemini puts in error.status, by HTTP status.
_RPC_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_WORDS = re.compile(r"\S+\s*")
# What Gemini 3 attaches to the first functionCall part of a turn (opaque bytes).
_THOUGHT_SIGNATURE = base64.b64encode(b"fake-thought-signature").decode()


def google_error_body(
    status: int, message: str, *, retry_delay_s: float | None = None
) -> dict[str, Any]:
    """Gemini's error envelope; ``retry_delay_s`` adds the RetryInfo detail it sends."""
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": _RPC_STATUS.get(status, HTTPStatus(status).phrase.upper().replace(" ", "_")),
    }
    if retry_delay_s is not None:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": f"{retry_delay_s:g}s",
            }
        ]
    return {"error": error}


@dataclass(frozen=True)
class GeminiReply:
    """One scripted answer. ``usage`` is a ``usageMetadata`` object as Gemini sends it
    (camelCase); when None the fake counts words."""

    text: str = ""
    function_calls: list[dict[str, Any]] = field(default_factory=list)  # {"name", "args"}
    finish_reason: str = "STOP"
    usage: dict[str, Any] | None = None


@dataclass
class GoogleFake(FakeServer):
    """The Gemini Developer API on a loopback port."""

    error_body: ErrorBody = google_error_body
    _scripted: deque[GeminiReply] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.routes = [Route("/{version}/models/{target}", self._generate, methods=["POST"])]

    # --- test controls ----------------------------------------------------------
    def script(self, **reply: Any) -> None:
        """Answer the next request with ``GeminiReply(**reply)`` instead of the echo."""
        with self._lock:
            self._scripted.append(GeminiReply(**reply))

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._scripted.clear()

    def _next_reply(self, body: dict[str, Any]) -> GeminiReply:
        with self._lock:
            if self._scripted:
                return self._scripted.popleft()
        return _echo_reply(body)

    # --- the endpoint ---------------------------------------------------------------
    async def _generate(self, request: Request) -> Response:
        body = await self.record(request)
        model, _, method = request.path_params["target"].partition(":")
        fault = self.next_fault()
        if not request.headers.get("x-goog-api-key"):
            return _error(
                403,
                "Method doesn't allow unregistered callers (callers without "
                "established identity). Please use API Key or other form of API "
                "consumer identity to call this API.",
            )
        failed = await self.apply_fault(fault)
        if failed is not None:
            return _with_retry_info(failed, fault)
        reply = self._next_reply(body)
        response_id = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:22]
        chunks = _render(reply, body, model, response_id)
        if method == "generateContent":
            return JSONResponse(_merge(chunks))
        if method == "streamGenerateContent":
            if request.query_params.get("alt") != "sse":
                return _error(400, "This fake streams only with alt=sse, as the SDK asks.")
            events = [
                f"data: {json.dumps(chunk, separators=(',', ':'))}\r\n\r\n" for chunk in chunks
            ]
            return self.sse(fault, events)
        return _error(404, f"Method not found: {method}")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(google_error_body(status, message), status_code=status)


def _with_retry_info(response: Response, fault: Fault) -> Response:
    """Gemini states the wait in the body as well; FakeServer only sets the header."""
    if fault.retry_after is None or fault.status is None:
        return response
    message = json.loads(bytes(response.body))["error"]["message"]
    body = google_error_body(fault.status, message, retry_delay_s=fault.retry_after)
    return JSONResponse(
        body, status_code=fault.status, headers={"retry-after": response.headers["retry-after"]}
    )


# --- deriving an answer from the request -------------------------------------------


def _field(message: dict[str, Any], name: str, default: Any = None) -> Any:
    """A request field as Google's JSON parser reads it: camelCase or snake_case (the
    SDK sends top-level fields in camelCase but nested config objects in snake_case)."""
    snake = re.sub(r"([A-Z])", lambda m: "_" + m[1].lower(), name)
    return message.get(name, message.get(snake, default))


def _texts(content: dict[str, Any]) -> list[str]:
    return [part["text"] for part in content.get("parts", []) if "text" in part]


def _echo_reply(body: dict[str, Any]) -> GeminiReply:
    """``echo: <last user text>``, cut by stop sequences and the output limit."""
    last = ""
    for content in reversed(body.get("contents", [])):
        texts = _texts(content)
        if content.get("role") == "user" and texts:
            last = "".join(texts)
            break
    text = f"echo: {last}"
    config = _field(body, "generationConfig", {})
    for stop in _field(config, "stopSequences", []):
        if stop in text:
            text = text[: text.index(stop)]
    words = _WORDS.findall(text)
    limit = _field(config, "maxOutputTokens")
    if limit is not None and len(words) > limit:
        return GeminiReply(text="".join(words[:limit]), finish_reason="MAX_TOKENS")
    return GeminiReply(text=text)


def _prompt_tokens(body: dict[str, Any]) -> int:
    contents = [*body.get("contents", []), _field(body, "systemInstruction", {})]
    return sum(len(_WORDS.findall(text)) for content in contents for text in _texts(content))


def _usage(reply: GeminiReply, body: dict[str, Any]) -> dict[str, Any]:
    if reply.usage is not None:
        return reply.usage
    prompt = _prompt_tokens(body)
    candidates = len(_WORDS.findall(reply.text)) + sum(
        len(json.dumps(call.get("args", {}))) // 4 + 1 for call in reply.function_calls
    )
    return {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
    }


def _render(
    reply: GeminiReply, body: dict[str, Any], model: str, response_id: str
) -> list[dict[str, Any]]:
    """The answer as the chunks a stream would send; the last carries finish and usage."""
    part_lists: list[list[dict[str, Any]]] = [
        [{"text": piece}] for piece in _WORDS.findall(reply.text)
    ]
    if reply.function_calls:
        calls = [
            {"functionCall": {"name": c["name"], "args": c.get("args", {})}}
            for c in reply.function_calls
        ]
        calls[0]["thoughtSignature"] = _THOUGHT_SIGNATURE
        part_lists.append(calls)
    if not part_lists:
        part_lists.append([])
    usage = _usage(reply, body)
    running = {
        "promptTokenCount": usage.get("promptTokenCount", 0),
        "totalTokenCount": usage.get("promptTokenCount", 0),
    }
    chunks = []
    for number, parts in enumerate(part_lists, start=1):
        content: dict[str, Any] = {"role": "model"}
        if parts:
            content["parts"] = parts
        candidate: dict[str, Any] = {"content": content, "index": 0}
        last = number == len(part_lists)
        if last:
            candidate["finishReason"] = reply.finish_reason
        chunks.append(
            {
                "candidates": [candidate],
                "usageMetadata": usage if last else running,
                "modelVersion": model,
                "responseId": response_id,
            }
        )
    return chunks


def _merge(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """The non-streamed answer: every chunk's parts in one candidate, text joined."""
    parts: list[dict[str, Any]] = []
    for chunk in chunks:
        for part in chunk["candidates"][0]["content"].get("parts", []):
            if "text" in part and parts and "text" in parts[-1]:
                parts[-1] = {"text": parts[-1]["text"] + part["text"]}
            else:
                parts.append(part)
    merged = copy.deepcopy(chunks[-1])
    content = merged["candidates"][0]["content"]
    content.pop("parts", None)
    if parts:
        content["parts"] = parts
    return merged
