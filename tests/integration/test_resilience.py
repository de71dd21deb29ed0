"""Resilience end to end: retries, the shared circuit breaker and fallback chains, proven
through the whole request path (the in-process OpenAI endpoint) against the three
provider wire fakes, reached through the real SDKs, with faults on real sockets.

Time: every resilience duration is nominal and multiplied by ``BATON_TIME_SCALE`` (design
decision 10), upstream ``retry-after`` values included, so with the scale at 0.05 a
nominal 40 s attempt timeout lasts 2 s and a ``retry-after: 2`` waits 0.1 s.
Each test writes its own resilience file (short chains, tiny delays).

Isolation: breaker state is keyed by model id and shared by every process on the one
test Redis. These tests therefore take turns through a lock in that Redis (the xdist
group ``resilience`` would keep them on one worker, but pytest 9.2 broke loadgroup; see
``tests/plugins/resilience.py``), route only to models no other request-path test uses,
and clear those models' breaker, health and incident keys before and after each test.
The 1,000-request load test lives in ``test_resilience_load.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from baton.api.health import app as health_app
from baton.kv.client import get_async_client
from baton.kv.scripts import SyncClient
from baton.local.lambda_events import LocalLambdaContext, http_api_event
from tests.fakes.openai_fake import CONTEXT_LENGTH_MESSAGES
from tests.fakes.server import Fault
from tests.plugins.resilience import (
    FALLBACK,
    NARROW,
    PRIMARY,
    THIRD,
    TIME_SCALE,
    Serve,
    Upstreams,
    body,
    breaker_state,
    send_all,
    stamp_arrivals,
    trip,
    upstream_calls,
)
from tests.spec import assert_valid

pytestmark = [pytest.mark.anyio, pytest.mark.xdist_group("resilience")]

ROOT = Path(__file__).resolve().parents[2]
MIN_CALLS = 10  # the breaker's default: calls in its window before it may open
# A window that keeps every failure of a test, however slow the machine (nominal 600 s,
# 30 s at TIME_SCALE), and, for tests that never wait for it, a cooldown as long.
LONG_WINDOW = {"BATON_BREAKER_WINDOW_S": "600"}
LONG_COOLDOWN = {**LONG_WINDOW, "BATON_BREAKER_COOLDOWN_S": "600"}


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    payload = response.json()
    assert_valid("ErrorResponse", payload)
    return dict(payload["error"])


def served_by(response: httpx.Response, model: str) -> None:
    """A 200 from ``model``, as the caller sees it in the response headers."""
    assert response.status_code == 200, response.text
    assert response.headers["x-baton-model"] == model
    assert response.headers["x-baton-provider"] == model.partition("/")[0]


def attempts(response: httpx.Response) -> list[str]:
    header = response.headers.get("x-baton-attempts")
    return header.split(",") if header else []


def degraded(response: httpx.Response) -> list[str]:
    """The steps that fell back to their Redis-down policy for this request."""
    header = response.headers.get("x-baton-degraded")
    return header.split(",") if header else []


# --- primary down ---------------------------------------------------------------------------


@pytest.mark.parametrize("outage", ["http_500", "connection_refused"])
async def test_primary_down_every_request_is_answered_and_the_open_breaker_stops_the_calls(
    serve: Serve,
    upstreams: Upstreams,
    breaker_redis: SyncClient,
    closed_port_url: str,
    outage: str,
) -> None:
    settings = dict(LONG_COOLDOWN)
    if outage == "connection_refused":
        settings["OPENAI_BASE_URL"] = f"{closed_port_url}/v1"
    failure = {"http_500": "500", "connection_refused": "upstream_unavailable"}[outage]
    async with serve(**settings) as app:
        if outage == "http_500":
            upstreams.openai.inject(Fault(status=500), times=1_000)
        # One request at a time until the breaker opens, so the count at opening is exact.
        responses: list[httpx.Response] = []
        while breaker_state(app, breaker_redis, PRIMARY).state != "open":
            assert len(responses) < MIN_CALLS, "the breaker never opened"
            responses.append(await app.chat(body(PRIMARY)))
        calls_at_open = upstream_calls(breaker_redis, PRIMARY)
        received_at_open = len(upstreams.openai.requests)
        # The rest arrive together while the breaker is open.
        rest = await send_all(app, [body(PRIMARY, n) for n in range(len(responses), 200)], 20)
        opened = breaker_state(app, breaker_redis, PRIMARY)

    assert len(responses) + len(rest) == 200
    for response in [*responses, *(timed.response for timed in rest)]:
        served_by(response, FALLBACK)
        # Every permit came from the breaker: one that Redis did not answer in time fails
        # open and calls the model (the Redis-down policy), which no count below allows.
        assert "breaker" not in degraded(response)
    # Three attempts per request (every one failed) until the tenth failure opened it.
    assert attempts(responses[0]) == [f"{PRIMARY}:{failure}"] * 3
    assert calls_at_open == MIN_CALLS
    assert upstream_calls(breaker_redis, PRIMARY) == calls_at_open
    if outage == "http_500":
        assert received_at_open == MIN_CALLS
        assert len(upstreams.openai.requests) == received_at_open
    # An open breaker is one refused permit, then the next model at once.
    assert {",".join(attempts(timed.response)) for timed in rest} == {f"{PRIMARY}:breaker_open"}
    assert opened.state == "open" and opened.cooldown_until is not None
    assert time.time() < opened.cooldown_until, "every request came before the cooldown ended"


# --- retry-after and the deadline ---------------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "anthropic", "google"])
async def test_a_short_retry_after_is_waited_out_before_the_retry(
    serve: Serve, upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    model, fake = upstreams.primary_of(provider)
    retry_after = 2.0  # nominal: 0.1 s, below retry_after_max_s (0.25 s)
    async with serve() as app:
        arrivals = stamp_arrivals(fake, monkeypatch)
        fake.inject(Fault(status=429, retry_after=retry_after))
        response = await app.chat(body(model))
    served_by(response, model)
    assert attempts(response) == [f"{model}:429"]
    assert len(arrivals) == 2
    # Longer than any jittered backoff (max_delay_s is 0.05 s here): the header's wait.
    assert arrivals[1] - arrivals[0] >= retry_after * TIME_SCALE


async def test_a_long_retry_after_fails_over_at_once(
    serve: Serve, upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch
) -> None:
    retry_after = 60.0  # nominal: 3 s, above retry_after_max_s (0.25 s)
    async with serve() as app:
        primary = stamp_arrivals(upstreams.openai, monkeypatch)
        fallback = stamp_arrivals(upstreams.anthropic, monkeypatch)
        upstreams.openai.inject(Fault(status=429, retry_after=retry_after))
        response = await app.chat(body(PRIMARY))
    served_by(response, FALLBACK)
    assert attempts(response) == [f"{PRIMARY}:429"]
    assert len(primary) == 1 and len(fallback) == 1
    assert fallback[0] - primary[0] < retry_after * TIME_SCALE / 2


async def test_a_retry_that_cannot_finish_before_the_deadline_is_not_started(
    serve: Serve, upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same retry-after is waited out with time to spare, and not waited at all when
    the deadline would pass first: the caller gets the upstream's 503 at once, not a 504
    after a wait that could not help."""
    scale = 0.2
    retry_after = 4.5  # nominal: 0.9 s, within retry_after_max_s (1 s at this scale)
    no_fallback = {"fallbacks": []}
    async with serve(time_scale=scale) as app:
        arrivals = stamp_arrivals(upstreams.openai, monkeypatch)
        upstreams.openai.inject(Fault(status=429, retry_after=retry_after))
        waited = await app.chat(body(PRIMARY, baton={**no_fallback, "timeout_s": 5}))
        served_by(waited, PRIMARY)
        assert arrivals[1] - arrivals[0] >= retry_after * scale

        upstreams.openai.inject(Fault(status=429, retry_after=retry_after))
        hurried = await app.chat(body(PRIMARY, baton={**no_fallback, "timeout_s": 0.9}))
        await asyncio.sleep(retry_after * scale)  # a retry, had one been started, lands now
    assert error_of(hurried, 503)["code"] == "upstream_unavailable"
    assert len(arrivals) == 3


# --- streams --------------------------------------------------------------------------------


def sse_data(response: httpx.Response) -> list[str]:
    """The ``data:`` payloads of a streamed answer, in order."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return [
        line.removeprefix("data: ")
        for line in response.text.split("\n")
        if line.startswith("data: ")
    ]


def chunks_of(data: list[str]) -> list[dict[str, Any]]:
    chunks = [json.loads(payload) for payload in data if payload != "[DONE]"]
    for chunk in chunks:
        if "error" not in chunk:
            assert_valid("CreateChatCompletionStreamResponse", chunk)
    return chunks


def streamed_text(chunks: list[dict[str, Any]]) -> str:
    return "".join(
        choice["delta"].get("content") or "" for chunk in chunks for choice in chunk["choices"]
    )


async def test_a_stream_that_stalls_before_its_first_chunk_fails_over_silently(
    serve: Serve, upstreams: Upstreams
) -> None:
    first_chunk_timeout = 0.4
    async with serve(BATON_STREAM_FIRST_CHUNK_TIMEOUT_S=str(first_chunk_timeout)) as app:
        upstreams.openai.inject(Fault(delay_s=3.0), times=3)  # a retry would stall too
        response = await app.chat(body(PRIMARY, stream=True))
    data = sse_data(response)
    chunks = chunks_of(data)
    served_by(response, FALLBACK)
    assert data[-1] == "[DONE]" and data.count("[DONE]") == 1
    assert not [chunk for chunk in chunks if "error" in chunk]
    assert {chunk["model"] for chunk in chunks} == {FALLBACK}
    assert streamed_text(chunks)  # the fallback's whole answer, nothing of the primary's
    # A stall is not retried on the same model: each wait was a whole first-chunk timeout.
    assert attempts(response) == [f"{PRIMARY}:upstream_stream_stalled"]
    assert len(upstreams.openai.requests) == 1 and len(upstreams.anthropic.requests) == 1


async def test_a_stream_broken_after_its_first_chunk_ends_with_an_error_event(
    serve: Serve, upstreams: Upstreams
) -> None:
    async with serve() as app:
        # The role chunk and one content piece get out, then the connection drops.
        upstreams.openai.inject(Fault(break_after_chunks=2))
        response = await app.chat(body(PRIMARY, stream=True))
    data = sse_data(response)
    chunks = chunks_of(data)
    served_by(response, PRIMARY)
    assert "[DONE]" not in data
    *content, last = chunks
    assert_valid("ErrorResponse", last)
    assert last["error"]["type"] == "upstream_error"
    assert content and not [chunk for chunk in content if "error" in chunk]
    assert streamed_text(content)  # what came before the break reached the client
    assert len(upstreams.openai.requests) == 1  # no second try once a chunk went out
    assert not upstreams.anthropic.requests and not upstreams.google.requests


async def test_every_upstream_call_counts_once_in_the_health_window(
    serve: Serve, breaker_redis: SyncClient
) -> None:
    async with serve() as app:
        buffered = await app.chat(body(PRIMARY))
        streamed = await app.chat(body(PRIMARY, stream=True))
    served_by(buffered, PRIMARY)
    assert sse_data(streamed)[-1] == "[DONE]"
    assert upstream_calls(breaker_redis, PRIMARY) == 2


# --- recovery and the health view ----------------------------------------------------------


def health_view(key: str) -> tuple[int, dict[str, Any]]:
    """``GET /v2/health`` with a key, through the HTTP API handler as Lambda calls it."""
    event = http_api_event(
        method="GET",
        path="/v2/health",
        headers={"authorization": f"Bearer {key}"},
        query="",
        body=b"",
    )
    response = health_app.resolve(event, LocalLambdaContext(function_name="HealthFunction"))
    return int(response["statusCode"]), json.loads(response["body"])


def model_view(view: dict[str, Any], model: str) -> dict[str, Any]:
    return next(entry for entry in view["models"] if entry["model"] == model)


async def test_after_the_upstream_heals_probes_close_the_breaker_and_health_shows_the_incident(
    serve: Serve, upstreams: Upstreams, breaker_redis: SyncClient
) -> None:
    cooldown = 40.0  # nominal: 2 s, time enough for what the test does while it lasts
    async with serve(**LONG_WINDOW, BATON_BREAKER_COOLDOWN_S=str(cooldown)) as app:
        upstreams.openai.inject(Fault(status=500), times=1_000)
        for _ in range(MIN_CALLS):
            served_by(await app.chat(body(PRIMARY)), FALLBACK)
            if breaker_state(app, breaker_redis, PRIMARY).state == "open":
                break
        opened = breaker_state(app, breaker_redis, PRIMARY)
        assert opened.state == "open" and opened.cooldown_until is not None
        status_open, view_open = health_view(app.key)

        upstreams.openai.reset()  # healed: no more faults
        served_by(await app.chat(body(PRIMARY)), FALLBACK)  # still cooling down
        assert not upstreams.openai.requests
        await asyncio.sleep(max(0.0, opened.cooldown_until - time.time()) + 0.05)

        probe = await app.chat(body(PRIMARY))
        closed = breaker_state(app, breaker_redis, PRIMARY)
        after = await send_all(app, [body(PRIMARY, n) for n in range(10)], 5)
        status_closed, view_closed = health_view(app.key)

    assert status_open == 200 and view_open["status"] == "degraded"
    breaker_open = model_view(view_open, PRIMARY)
    assert breaker_open["breaker"]["state"] == "open"
    assert breaker_open["breaker"]["opened_at"] == opened.opened_at
    # One request at a time: the window's ten failures opened it, none came after.
    assert breaker_open["open_incident"]["failures"] == MIN_CALLS

    served_by(probe, PRIMARY)
    assert attempts(probe) == []
    assert closed.state == "closed"
    for timed in after:
        served_by(timed.response, PRIMARY)
    assert len(upstreams.openai.requests) == 1 + len(after)

    assert status_closed == 200
    primary = model_view(view_closed, PRIMARY)
    assert primary["breaker"]["state"] == "closed"
    assert primary["open_incident"] is None
    assert closed.last_recovery_at is not None
    assert primary["last_recovery_at"] == closed.last_recovery_at
    assert primary["calls"] == MIN_CALLS + 1 + len(after)  # failures, the probe, the rest
    assert model_view(view_closed, FALLBACK)["breaker"]["state"] == "closed"
    [incident] = [i for i in view_closed["recent_incidents"] if i["model"] == PRIMARY]
    assert incident["provider"] == "openai"
    # Incidents are stored as JSON by the breaker's script (cjson keeps 14 digits).
    assert incident["opened_at"] == pytest.approx(opened.opened_at, abs=1e-3)
    assert incident["closed_at"] == pytest.approx(closed.last_recovery_at, abs=1e-3)
    assert incident["duration_s"] == pytest.approx(
        closed.last_recovery_at - opened.opened_at, abs=1e-3
    )
    assert incident["duration_s"] >= cooldown * TIME_SCALE
    assert incident["failures"] == MIN_CALLS


# --- two processes, one Redis -------------------------------------------------------------

# Another process, as another Lambda instance would be: its own settings, clients, breaker.
OPEN_IN_ANOTHER_PROCESS = """
import asyncio
import sys

from baton.clock import SystemClock
from baton.config import get_settings
from baton.kv.breaker import CircuitBreaker
from baton.kv.client import open_async_client
from tests.plugins.resilience import trip


async def main(target: str) -> None:
    settings = get_settings()
    client = await open_async_client(settings, timeout_s=5)
    print(await trip(CircuitBreaker(settings.breaker, SystemClock()), client, target))
    await client.aclose()


asyncio.run(main(sys.argv[1]))
"""


async def test_a_breaker_opened_by_another_process_keeps_this_one_off_the_model(
    serve: Serve, upstreams: Upstreams, breaker_redis: SyncClient, redis_url: str
) -> None:
    async with serve(**LONG_COOLDOWN) as app:
        env = {**os.environ, **LONG_COOLDOWN, "REDIS_URL": redis_url}
        env["BATON_TIME_SCALE"] = str(TIME_SCALE)
        with anyio.fail_after(60):
            other = await anyio.run_process(
                [sys.executable, "-c", OPEN_IN_ANOTHER_PROCESS, PRIMARY],
                env=env,
                cwd=ROOT,
                check=False,
            )
        assert other.returncode == 0, other.stderr.decode()
        assert other.stdout.decode().strip() == "open"
        response = await app.chat(body(PRIMARY))
        here = breaker_state(app, breaker_redis, PRIMARY)
    served_by(response, FALLBACK)
    assert attempts(response) == [f"{PRIMARY}:breaker_open"]
    assert not upstreams.openai.requests
    assert here.state == "open"


async def test_with_every_breaker_of_the_chain_open_the_answer_is_a_503_without_upstream_calls(
    serve: Serve, upstreams: Upstreams
) -> None:
    async with serve(**LONG_COOLDOWN) as app:
        client = await get_async_client()
        for target in (PRIMARY, FALLBACK, THIRD):
            assert await trip(app.runtime.breaker, client, target) == "open"
        response = await app.chat(body(PRIMARY))
    error = error_of(response, 503)
    assert error["code"] == "all_models_unavailable"
    assert not [fake for fake in upstreams.fakes if fake.requests]


# --- the chain ----------------------------------------------------------------------------


async def test_attempts_header_lists_the_failed_attempts_before_the_answer(
    serve: Serve, upstreams: Upstreams
) -> None:
    async with serve() as app:
        clean = await app.chat(body(PRIMARY))
        upstreams.openai.inject(Fault(status=503), times=3)
        upstreams.anthropic.inject(Fault(status=500))
        response = await app.chat(body(PRIMARY))
    served_by(clean, PRIMARY)
    assert "x-baton-attempts" not in clean.headers
    served_by(response, FALLBACK)
    assert response.json()["model"] == FALLBACK
    assert attempts(response) == [f"{PRIMARY}:503"] * 3 + [f"{FALLBACK}:500"]
    assert not upstreams.google.requests


async def test_a_context_length_error_moves_to_a_model_with_a_larger_window(
    serve: Serve, upstreams: Upstreams
) -> None:
    """NARROW's chain is [claude-haiku-4-5 (200k), gemini-3.1-pro (1M)]: after NARROW
    (400k) says the prompt is too long, only the larger window is worth a call."""
    async with serve() as app:
        upstreams.openai.inject(Fault(status=400, message=CONTEXT_LENGTH_MESSAGES[0]))
        response = await app.chat(body(NARROW))
    served_by(response, THIRD)
    assert attempts(response) == [f"{NARROW}:context_length_exceeded"]
    assert len(upstreams.openai.requests) == 1  # not retried: it cannot fit next time
    assert not upstreams.anthropic.requests
    assert len(upstreams.google.requests) == 1


async def test_a_caller_error_from_the_provider_is_returned_without_fallback(
    serve: Serve, upstreams: Upstreams
) -> None:
    async with serve() as app:
        upstreams.openai.inject(Fault(status=400, message="Invalid value for 'top_p'."))
        response = await app.chat(body(PRIMARY))
    error = error_of(response, 400)
    assert (error["type"], error["code"]) == ("invalid_request_error", "upstream_rejected_request")
    assert "Invalid value for 'top_p'." in error["message"]
    assert len(upstreams.openai.requests) == 1
    assert not upstreams.anthropic.requests and not upstreams.google.requests


async def test_a_requests_own_fallbacks_replace_the_configured_chain(
    serve: Serve, upstreams: Upstreams
) -> None:
    async with serve() as app:
        upstreams.openai.inject(Fault(status=500), times=3)
        own = await app.chat(body(PRIMARY, baton={"fallbacks": [THIRD]}))
        upstreams.openai.inject(Fault(status=500), times=3)
        none = await app.chat(body(PRIMARY, baton={"fallbacks": []}))
    served_by(own, THIRD)
    assert error_of(none, 502)["type"] == "upstream_error"
    assert len(upstreams.openai.requests) == 6
    assert len(upstreams.google.requests) == 1
    assert not upstreams.anthropic.requests  # the configured fallback was never asked


async def test_an_unknown_model_in_fallbacks_is_a_400(serve: Serve, upstreams: Upstreams) -> None:
    async with serve() as app:
        response = await app.chat(body(PRIMARY, baton={"fallbacks": [THIRD, "openai/nope"]}))
    error = error_of(response, 400)
    assert error["param"] == "baton.fallbacks"
    assert "openai/nope" in error["message"]
    assert not upstreams.openai.requests and not upstreams.google.requests
