"""A small real HTTP server for provider fakes, with fault injection.

Each provider fake (``openai_fake``, ``anthropic_fake``, ``gemini_fake``) is a Starlette
app speaking that provider's wire protocol, served by uvicorn on a free loopback port in
a background thread, so Baton's adapters reach it through the real SDKs over real HTTP.

Faults are queued per server and consumed one per request, in order:

    fake.inject(Fault(status=429, retry_after=2))     # next request gets a 429
    fake.inject(Fault(delay_s=0.5))                   # next request answers late
    fake.inject(Fault(break_after_chunks=2))          # next stream dies after 2 chunks
    fake.inject(Fault(status=500), times=3)           # next three requests fail

``fake.requests`` records every request body received (parsed JSON) with its path and
headers, ``fake.disconnects`` counts streams whose client went away mid-stream, and
``fake.last_chunk_sent_at`` is when (``time.monotonic()``) the latest stream chunk went out,
so a test can order what its client received against what the fake sent.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour for one request."""

    status: int | None = None  # answer this HTTP status with the provider's error body
    retry_after: float | None = None  # sent as the retry-after header with the status
    delay_s: float = 0.0  # wait this long before answering (or before the first chunk)
    chunk_delay_s: float = 0.0  # wait between stream chunks
    break_after_chunks: int | None = None  # drop the connection after this many chunks
    message: str | None = None  # error message override (e.g. context length)


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


ErrorBody = Callable[[int, str], dict[str, Any]]


@dataclass
class FakeServer:
    """Runs a Starlette app on 127.0.0.1 in a thread; base for the provider fakes."""

    error_body: ErrorBody
    routes: list[Route] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    disconnects: int = 0
    last_chunk_sent_at: float | None = None
    _faults: deque[Fault] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- lifecycle -------------------------------------------------------------
    def start(self) -> FakeServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(Starlette(routes=self.routes), log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- faults ----------------------------------------------------------------
    def inject(self, fault: Fault, times: int = 1) -> None:
        with self._lock:
            self._faults.extend([fault] * times)

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self.requests.clear()
            self.disconnects = 0
            self.last_chunk_sent_at = None

    def next_fault(self) -> Fault:
        with self._lock:
            return self._faults.popleft() if self._faults else Fault()

    # --- helpers for the provider apps -------------------------------------------
    async def record(self, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = await request.json() if await request.body() else {}
        self.requests.append(RecordedRequest(request.url.path, dict(request.headers), body))
        return body

    async def apply_fault(self, fault: Fault) -> Response | None:
        """Wait and/or answer the fault's error; None means: answer normally."""
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        if fault.status is None:
            return None
        headers = {}
        if fault.retry_after is not None:
            headers["retry-after"] = str(fault.retry_after)
        message = fault.message or f"injected {fault.status}"
        return JSONResponse(
            self.error_body(fault.status, message), status_code=fault.status, headers=headers
        )

    def sse(
        self, fault: Fault, events: list[str], media_type: str = "text/event-stream"
    ) -> StreamingResponse:
        """Stream pre-rendered SSE event strings, honouring chunk delays and breaks."""

        async def body() -> AsyncIterator[bytes]:
            try:
                for sent, event in enumerate(events):
                    if fault.break_after_chunks is not None and sent >= fault.break_after_chunks:
                        raise ConnectionAbortedError("injected broken stream")
                    if sent and fault.chunk_delay_s:
                        await asyncio.sleep(fault.chunk_delay_s)
                    self.last_chunk_sent_at = time.monotonic()
                    yield event.encode()
            except asyncio.CancelledError:
                self.disconnects += 1
                raise

        return StreamingResponse(body(), media_type=media_type)
