"""ASGI middleware of the OpenAI endpoint: a request id for every request, the
body-size bound enforced while the body streams in (before anything parses it), and
the last line of defence: an unexpected exception becomes OpenAI's 500 body, logged
with its traceback, instead of reaching the server (or Mangum) as a crash."""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from baton.api.errors import error_response_parts
from baton.errors import PayloadTooLargeError


class RequestIdAndSizeLimit:
    """Sets ``scope["state"]["request_id"]`` and answers 413 for oversized bodies."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = f"req_{uuid.uuid4().hex}"
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name == b"x-request-id" for name, _ in headers):
                    headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _reject(send_with_id, declared, self.max_body_bytes)
            return

        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise PayloadTooLargeError(
                        f"Request body exceeds the limit of {self.max_body_bytes} bytes."
                    )
            return message

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send_with_id(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except Exception as exc:
            if started:
                raise  # the status line is out; the server can only cut the response
            status, body, headers = error_response_parts(exc, request_id)
            await _send_json(send_with_id, status, body, headers)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _reject(send: Send, size: int, limit: int) -> None:
    error = PayloadTooLargeError(f"Request body is {size} bytes; the limit is {limit} bytes.")
    await _send_json(send, error.status, error.body(), {})


async def _send_json(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str]
) -> None:
    raw = [(b"content-type", b"application/json")]
    raw += [(name.encode(), value.encode()) for name, value in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})
