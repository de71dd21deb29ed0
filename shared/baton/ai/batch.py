"""``POST /v2/chat/batch``: many chat requests in one call, each through the same
pipeline as a single request.

Items run with bounded concurrency and are answered in order, one result or one error
each; one failing item never fails the batch. The whole batch shares the request's
deadline: an item that could not start before it is reported as not started (504,
``batch_item_not_started``) rather than silently dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel, Field, ValidationError

from baton.clock import Deadline
from baton.errors import (
    BatonError,
    InvalidRequestError,
    UpstreamTimeoutError,
    internal_error_body,
    validation_error,
)
from baton.schema import ChatCompletionRequest


class BatchRequest(BaseModel):
    """The batch body: the items stay raw so each is validated (and fails) on its own."""

    requests: list[dict[str, Any]] = Field(min_length=1)


class BatchItemResult(BaseModel):
    index: int
    status: int
    response: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class BatchResponse(BaseModel):
    object: str = "baton.chat.batch"
    results: list[BatchItemResult]
    succeeded: int
    failed: int
    not_started: int


logger = Logger(service="baton", child=True)

# Runs one validated item through the pipeline; returns its response body.
RunItem = Callable[[int, ChatCompletionRequest], Awaitable[dict[str, Any]]]


async def run_batch(
    batch: BatchRequest,
    run_item: RunItem,
    deadline: Deadline,
    concurrency: int,
    max_items: int,
    min_start_s: float = 0.0,
) -> BatchResponse:
    """Run every item; never raises for an item's failure. An item is not started when
    less than ``min_start_s`` is left: no attempt could finish in that time."""
    if len(batch.requests) > max_items:
        raise InvalidRequestError(
            f"The batch has {len(batch.requests)} requests; the limit is {max_items}.",
            param="requests",
            code="batch_too_large",
        )
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int, raw: dict[str, Any]) -> BatchItemResult:
        async with gate:
            if deadline.remaining() <= min_start_s:
                return _failed(index, _not_started())
            try:
                request = ChatCompletionRequest.model_validate(raw)
                if request.stream:
                    raise InvalidRequestError(
                        "Batch items cannot stream; send stream=false.", param="stream"
                    )
                response = await run_item(index, request)
            except ValidationError as exc:
                return _failed(index, validation_error(exc.errors()))
            except BatonError as exc:
                return _failed(index, exc)
            except Exception:  # one item's bug must not fail its neighbours
                logger.exception("batch item failed", extra={"index": index})
                return BatchItemResult(index=index, status=500, error=internal_error_body())
            return BatchItemResult(index=index, status=200, response=response)

    results = await asyncio.gather(*(one(i, raw) for i, raw in enumerate(batch.requests)))
    not_started = sum(
        1 for r in results if r.error and r.error["error"]["code"] == "batch_item_not_started"
    )
    succeeded = sum(1 for r in results if r.status == 200)
    return BatchResponse(
        results=list(results),
        succeeded=succeeded,
        failed=len(results) - succeeded - not_started,
        not_started=not_started,
    )


def _not_started() -> UpstreamTimeoutError:
    return UpstreamTimeoutError(
        "The batch reached its deadline before this item could start.",
        code="batch_item_not_started",
    )


def _failed(index: int, error: BatonError) -> BatchItemResult:
    return BatchItemResult(index=index, status=error.status, error=error.body())
