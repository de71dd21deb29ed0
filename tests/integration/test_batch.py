"""``POST /v2/chat/batch`` in-process: items answered in order, each failing on its own,
bounded concurrency, the batch limits, the shared deadline, auth and usage."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response

from baton.kv.client import get_async_client
from baton.kv.usage_counters import read_usage
from tests.fakes.openai_fake import OpenAIFake
from tests.fakes.server import Fault
from tests.plugins.app import AppClient, AppFactory
from tests.spec import assert_valid

pytestmark = pytest.mark.anyio

BATCH = "/v2/chat/batch"


def item(text: str, **extra: Any) -> dict[str, Any]:
    """One chat request; a unique tag keeps it out of other tests' cache and dedup."""
    content = f"{text} #{uuid.uuid4().hex[:8]}"
    return {"model": "simulated/echo", "messages": [{"role": "user", "content": content}], **extra}


async def send(app: AppClient, requests: list[dict[str, Any]]) -> httpx.Response:
    return await app.chat({"requests": requests}, path=BATCH)


def batch_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["object"] == "baton.chat.batch"
    assert [r["index"] for r in body["results"]] == list(range(len(body["results"])))
    return body


def error_of(result: dict[str, Any], status: int) -> dict[str, Any]:
    """The item's error, checked against OpenAI's ``ErrorResponse`` schema."""
    assert result["status"] == status, result
    assert "response" not in result
    assert_valid("ErrorResponse", result["error"])
    return dict(result["error"]["error"])


def top_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert_valid("ErrorResponse", response.json())
    return dict(response.json()["error"])


async def test_results_come_back_in_order_as_v2_bodies(make_app: AppFactory) -> None:
    prompts = [f"question {n}" for n in range(5)]
    async with make_app() as app:
        body = batch_of(await send(app, [item(p) for p in prompts]))
    assert (body["succeeded"], body["failed"], body["not_started"]) == (5, 0, 0)
    request_ids = []
    for prompt, result in zip(prompts, body["results"], strict=True):
        assert result["status"] == 200 and "error" not in result
        response = result["response"]
        assert prompt in response["choices"][0]["message"]["content"]
        baton = response.pop("baton")
        assert baton["model"] == "simulated/echo" and baton["provider"] == "simulated"
        request_ids.append(baton["request_id"])
        assert_valid("CreateChatCompletionResponse", response)
    # Each item is its own request under the batch's id: "<batch id>-<index>".
    batch_id = request_ids[0].removesuffix("-0")
    assert request_ids == [f"{batch_id}-{n}" for n in range(5)]


async def test_a_bad_item_and_a_failing_item_do_not_fail_the_others(
    make_app: AppFactory,
) -> None:
    requests = [
        item("first"),
        item("bad field", temperature="very hot"),
        item("[simulate:503] upstream down"),
        {"model": "simulated/echo"},  # no messages at all
        item("last"),
    ]
    async with make_app() as app:
        body = batch_of(await send(app, requests))
    results = body["results"]
    assert [r["status"] for r in results] == [200, 400, 503, 400, 200]
    assert error_of(results[1], 400)["param"] == "temperature"
    assert error_of(results[2], 503)["type"] == "upstream_error"
    assert error_of(results[3], 400)["param"] == "messages"
    assert "last" in results[4]["response"]["choices"][0]["message"]["content"]
    assert (body["succeeded"], body["failed"], body["not_started"]) == (2, 3, 0)


async def test_stream_items_are_refused_one_by_one(make_app: AppFactory) -> None:
    async with make_app() as app:
        body = batch_of(await send(app, [item("streamed", stream=True), item("buffered")]))
    error = error_of(body["results"][0], 400)
    assert error["param"] == "stream" and error["type"] == "invalid_request_error"
    assert body["results"][1]["status"] == 200
    assert (body["succeeded"], body["failed"]) == (1, 1)


@dataclass(eq=False)
class CountingOpenAIFake(OpenAIFake):
    """The OpenAI fake, also counting how many requests it is serving at once."""

    in_flight: int = 0
    max_in_flight: int = 0

    async def _chat(self, request: Request) -> Response:
        self.in_flight += 1  # one event loop thread serves every request: no lock needed
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await super()._chat(request)
        finally:
            self.in_flight -= 1


@pytest.fixture
def counting_fake() -> Iterator[CountingOpenAIFake]:
    fake = CountingOpenAIFake()
    fake.start()
    yield fake
    fake.stop()


async def test_concurrency_is_bounded_by_configuration(
    make_app: AppFactory, counting_fake: CountingOpenAIFake
) -> None:
    # Each upstream answer takes 300 ms, so every item the gateway lets run overlaps the
    # others in flight: the fake sees exactly the configured concurrency, never more.
    counting_fake.inject(Fault(delay_s=0.3), times=12)
    env = {
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": counting_fake.base_url,
        "BATON_BATCH_CONCURRENCY": "3",
    }
    requests = [item(f"q{n}", model="openai/gpt-4.1") for n in range(12)]
    async with make_app(env=env) as app:
        body = batch_of(await send(app, requests))
    assert body["succeeded"] == 12, body
    assert len(counting_fake.requests) == 12
    assert counting_fake.max_in_flight == 3


async def test_more_items_than_the_limit_is_400(make_app: AppFactory) -> None:
    async with make_app(env={"BATON_BATCH_MAX_ITEMS": "3"}) as app:
        response = await send(app, [item(f"q{n}") for n in range(4)])
        within = await send(app, [item(f"q{n}") for n in range(3)])
    error = top_error(response, 400)
    assert error["code"] == "batch_too_large" and error["param"] == "requests"
    assert batch_of(within)["succeeded"] == 3


async def test_an_empty_batch_is_400(make_app: AppFactory) -> None:
    async with make_app() as app:
        response = await send(app, [])
    assert top_error(response, 400)["param"] == "requests"


async def test_an_oversized_body_is_413(make_app: AppFactory) -> None:
    async with make_app(env={"BATON_MAX_BODY_BYTES": "4000"}) as app:
        response = await send(app, [item("x" * 1000) for _ in range(5)])
        small = await send(app, [item("small")])
    assert top_error(response, 413)["type"] == "invalid_request_error"
    assert batch_of(small)["succeeded"] == 1


async def test_items_left_at_the_deadline_are_reported_not_started(
    make_app: AppFactory,
) -> None:
    # One at a time, 400 ms each, within a 1 s deadline: the first item finishes, and the
    # last ones can only start after the deadline, so they never reach the provider.
    env = {"BATON_REQUEST_TIMEOUT_S": "1", "BATON_BATCH_CONCURRENCY": "1"}
    requests = [item(f"[simulate:slow=400] q{n}") for n in range(6)]
    async with make_app(env=env) as app:
        started = asyncio.get_running_loop().time()
        body = batch_of(await send(app, requests))
        elapsed = asyncio.get_running_loop().time() - started
        report = await read_usage(
            await get_async_client(), app.user, "day", datetime.now(UTC).date()
        )
    results = body["results"]
    assert results[0]["status"] == 200
    for result in results[-2:]:
        assert error_of(result, 504)["code"] == "batch_item_not_started"
    not_started = [
        r
        for r in results
        if r.get("error", {}).get("error", {}).get("code") == "batch_item_not_started"
    ]
    assert body["not_started"] == len(not_started) >= 2
    assert body["succeeded"] + body["failed"] + body["not_started"] == len(requests)
    # Items not started never reached the pipeline, so usage counts only the others.
    assert report.totals.requests == len(requests) - body["not_started"]
    assert elapsed < 5, "the batch must end near its deadline, not run every item"


@pytest.mark.parametrize("authorization", [None, "Bearer bt_not_a_real_key", "Basic abc"])
async def test_missing_or_invalid_key_is_401(
    make_app: AppFactory, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"authorization": authorization}
    async with make_app() as app:
        response = await app.http.post(BATCH, json={"requests": [item("hi")]}, headers=headers)
    assert top_error(response, 401)["type"] == "authentication_error"


async def test_each_item_counts_as_one_request_in_usage(make_app: AppFactory) -> None:
    requests = [item("one"), item("two"), item("[simulate:503] three")]
    async with make_app() as app:
        body = batch_of(await send(app, requests))
        report = await read_usage(
            await get_async_client(), app.user, "day", datetime.now(UTC).date()
        )
    assert (body["succeeded"], body["failed"]) == (2, 1)
    assert report.totals.requests == 3
    assert report.totals.errors == 1
    assert report.by_model["simulated/echo"].requests == 3
    completion_tokens = sum(
        r["response"]["usage"]["completion_tokens"] for r in body["results"] if r["status"] == 200
    )
    assert report.totals.completion_tokens == completion_tokens
