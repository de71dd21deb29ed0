"""What the resilience tests share: the three provider fakes as one set of upstreams, an
app whose chains and retry policies come from a small per-test resilience file, and
ways to see what the breaker and the upstreams saw.

Breaker and health keys are per model id and shared by everything on the test Redis, so
the resilience tests route only to :data:`OWN_MODELS` (no other request-path test uses
them), take turns through a lock in that Redis (:func:`breaker_redis`), and clear those
models' keys around each test (:func:`forget_models`; never a FLUSH).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request

from baton.clock import SystemClock
from baton.config import Settings
from baton.kv import health, keys
from baton.kv.breaker import BreakerStatus, CircuitBreaker, State
from baton.kv.client import build_sync_client
from baton.kv.scripts import AsyncClient, SyncClient
from tests.fakes.anthropic_fake import AnthropicFake
from tests.fakes.google_fake import GoogleFake
from tests.fakes.openai_fake import OpenAIFake
from tests.fakes.server import FakeServer
from tests.plugins.app import AppClient, AppFactory
from tests.plugins.redis import TEST_TIMEOUT_S

PRIMARY = "openai/gpt-5.5"
FALLBACK = "anthropic/claude-opus-5-5"
THIRD = "google/gemini-3.1-pro-preview"
NARROW = "openai/gpt-5.4-nano"  # a 400k-token context window
NARROWER = "anthropic/claude-haiku-4-5"  # 200k: never called after a context-length error
# The models these tests send traffic to (NARROWER is only ever skipped).
OWN_MODELS = (PRIMARY, FALLBACK, THIRD, NARROW)

CHAINS: dict[str, list[str]] = {
    PRIMARY: [FALLBACK, THIRD],
    FALLBACK: [THIRD, PRIMARY],
    THIRD: [PRIMARY, FALLBACK],
    NARROW: [NARROWER, THIRD],
}
# Nominal seconds, multiplied by BATON_TIME_SCALE like every resilience duration.
RETRY: dict[str, float] = {
    "attempts": 3,
    "base_delay_s": 0.2,
    "max_delay_s": 1.0,
    "timeout_s": 40.0,
    "retry_after_max_s": 5.0,
    "min_attempt_s": 0.5,
}
TIME_SCALE = 0.05
# The app's Redis timeout (connect, read and pool wait). Production's 0.5 s is for a Redis
# next door and a handler that serves one request; here one event loop carries up to 20
# concurrent requests beside three fake servers, in a process whose heap makes a full
# garbage collection take 0.2-0.4 s, so a reply can sit unread past 0.5 s. A breaker
# permit that times out fails open by design (the call goes upstream, ``x-baton-degraded:
# breaker``): Redis-down policy, not what these tests are about. They take the test
# clients' timeout instead, and assert that no permit fell back to it where it matters.
REDIS_TIMEOUT_S = TEST_TIMEOUT_S
PROMPT = "How does an orchestra follow the conductor's baton?"


@dataclass(frozen=True)
class Upstreams:
    """The three provider fakes, each the upstream of one of the chains' models."""

    openai: OpenAIFake
    anthropic: AnthropicFake
    google: GoogleFake

    def env(self) -> dict[str, str]:
        """Every provider configured and pointed at its fake."""
        return {
            "OPENAI_API_KEY": "sk-fake-resilience",
            "OPENAI_BASE_URL": self.openai.base_url,
            "ANTHROPIC_API_KEY": "sk-ant-fake-resilience",
            "ANTHROPIC_BASE_URL": self.anthropic.url,
            "GEMINI_API_KEY": "gemini-fake-resilience",
            "GEMINI_BASE_URL": self.google.url,
        }

    @property
    def fakes(self) -> tuple[FakeServer, ...]:
        return (self.openai, self.anthropic, self.google)

    def primary_of(self, provider: str) -> tuple[str, FakeServer]:
        """The chain head served by ``provider``, and its fake."""
        return {
            "openai": (PRIMARY, self.openai),
            "anthropic": (FALLBACK, self.anthropic),
            "google": (THIRD, self.google),
        }[provider]

    def reset(self) -> None:
        for fake in self.fakes:
            fake.reset()


@pytest.fixture
def upstreams(
    openai_fake: OpenAIFake, anthropic_fake: AnthropicFake, google_fake: GoogleFake
) -> Upstreams:
    return Upstreams(openai_fake, anthropic_fake, google_fake)


def forget_models(client: SyncClient, models: Sequence[str] = OWN_MODELS) -> None:
    """Remove the breaker, window, probes, incidents and recent health minutes of
    ``models`` (one DEL per model: its keys share one slot)."""
    minute = health.minute_of(time.time())
    minutes = range(minute - health.DEFAULT_WINDOW_MINUTES, minute + 2)
    for target in models:
        client.delete(
            keys.breaker_key(target),
            keys.health_key(target),
            keys.breaker_probes_key(target),
            keys.breaker_incidents_key(target),
            *(keys.health_minute_key(target, m) for m in minutes),
        )
        client.zrem(keys.breaker_index_key(), target)


# One resilience test at a time on the shared Redis, whichever worker or suite runs it.
# xdist's loadgroup cannot promise that: with pytest 9.2 it silently stops grouping
# (pytest-dev/pytest-xdist#1386), and it never covered two suites sharing one Redis.
LOCK_KEY = "baton-tests:resilience-lock"
LOCK_TTL_S = 300.0  # frees the lock if its holder dies; longer than any test may run
LOCK_WAIT_S = 100.0  # below pytest's per-test timeout, so a stuck wait fails clearly


@pytest.fixture
def breaker_redis(redis_url: str) -> Iterator[SyncClient]:
    """A client of the test Redis, holding the resilience lock for the test, with
    :data:`OWN_MODELS` forgotten before and after."""
    client = build_sync_client(Settings(redis_url=redis_url), timeout_s=TEST_TIMEOUT_S)
    lock = client.lock(LOCK_KEY, timeout=LOCK_TTL_S, blocking_timeout=LOCK_WAIT_S)
    if not lock.acquire():
        client.close()
        pytest.fail(f"another resilience test held {LOCK_KEY} for {LOCK_WAIT_S:g} s")
    try:
        forget_models(client)
        yield client
        forget_models(client)
    finally:
        lock.release()
        client.close()


@pytest.fixture
def closed_port_url() -> Iterator[str]:
    """A loopback URL that refuses connections: the port is bound but never listens,
    so no other process can take it while the test runs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def upstream_calls(client: SyncClient, target: str) -> int:
    """Calls that went upstream to ``target``: its passive health window counts each
    one, whatever the outcome, and never a call its breaker refused."""
    return health.window_stats(client, target, clock=SystemClock()).calls


def breaker_state(app: AppClient, client: SyncClient, target: str) -> BreakerStatus:
    return app.runtime.breaker.state(client, target)


async def trip(breaker: CircuitBreaker, client: AsyncClient, target: str) -> State | None:
    """Open ``target``'s breaker as failing calls would: ``min_calls`` permits, each
    reported failed. Returns the last transition (``"open"``)."""
    moved = None
    for _ in range(breaker.settings.min_calls):
        permit = await breaker.allow(client, target)
        moved = await breaker.record(client, target, success=False, permit=permit)
    return moved


def stamp_arrivals(fake: FakeServer, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The ``time.monotonic()`` of every request ``fake`` receives from now on, taken
    when it arrives (before any injected delay or error)."""
    arrivals: list[float] = []
    record = fake.record

    async def stamped(request: Request) -> dict[str, Any]:
        arrivals.append(time.monotonic())
        return await record(request)

    monkeypatch.setattr(fake, "record", stamped)
    return arrivals


def body(model: str, n: int = 0, **extra: Any) -> dict[str, Any]:
    """A chat request; ``n`` varies the text so no two requests are alike."""
    text = f"{PROMPT} ({n})" if n else PROMPT
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


@dataclass(frozen=True)
class Timed:
    response: httpx.Response
    seconds: float  # from sending to the whole response, at the client


async def send_all(
    app: AppClient, bodies: Sequence[dict[str, Any]], concurrency: int
) -> list[Timed]:
    """Every request, at most ``concurrency`` at a time, timed each."""
    limit = asyncio.Semaphore(concurrency)

    async def one(payload: dict[str, Any]) -> Timed:
        async with limit:
            started = time.monotonic()
            response = await app.chat(payload)
            return Timed(response, time.monotonic() - started)

    return list(await asyncio.gather(*(one(payload) for payload in bodies)))


Serve = Callable[..., AbstractAsyncContextManager[AppClient]]


def write_resilience_file(path: Path, retry: dict[str, float] | None = None) -> Path:
    """A resilience file of :data:`CHAINS` and :data:`RETRY` (``retry`` on top)."""
    raw = {"chains": CHAINS, "retry": {"default": {**RETRY, **(retry or {})}}}
    path.write_text(json.dumps(raw))
    return path


@pytest.fixture
def serve(
    make_app: AppFactory, upstreams: Upstreams, breaker_redis: SyncClient, tmp_path: Path
) -> Serve:
    """``async with serve(time_scale=..., retry={...}, BATON_X="...") as app``: the app on
    the three fakes with this module's chains, and Redis calls bounded by
    :data:`REDIS_TIMEOUT_S`.

    Before the app is handed over, one request per provider warms its SDK (imports and
    the first connection cost more than a shortened timeout allows), then the fakes and
    the models' keys are cleared, so every count a test reads is its own.
    """

    @asynccontextmanager
    async def serving(
        *,
        time_scale: float = TIME_SCALE,
        retry: dict[str, float] | None = None,
        **settings: str,
    ) -> AsyncIterator[AppClient]:
        path = write_resilience_file(tmp_path / "resilience.json", retry)
        env = {
            **upstreams.env(),
            "BATON_RESILIENCE_FILE": str(path),
            "BATON_TIME_SCALE": str(time_scale),
            "BATON_REDIS_SOCKET_TIMEOUT_S": str(REDIS_TIMEOUT_S),
            **settings,
        }
        async with make_app(env=env) as app:
            await warm_up(app.chat)
            upstreams.reset()
            forget_models(breaker_redis)
            yield app

    return serving


async def warm_up(chat: Callable[[dict[str, Any]], Awaitable[httpx.Response]]) -> None:
    """One request to each chain head (its answer does not matter: a provider that a
    test made unreachable fails here too)."""
    for model in (PRIMARY, FALLBACK, THIRD):
        await chat(body(model, baton={"fallbacks": []}))
