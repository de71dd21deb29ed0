"""Retries on one model: exponential backoff with full jitter, ``retry-after`` honoured
when short, and never a wait or an attempt that cannot finish before the deadline.

The loop is ``tenacity``'s (its wait runs before its stop check, so the stop condition
sees the exact wait about to happen). Baton adds three rules tenacity does not know:

- *What is retryable* (:func:`verdict`): 408, 409, 429, 5xx, 529, connection errors and
  timeouts are retried on the same model; context-length errors, provider-side auth and
  not-found errors, and an open circuit breaker move straight to another model; the
  caller's own errors (a 400 the provider raised, a content-policy refusal) are returned
  as they are.
- *Retry-after*: an upstream ``retry-after`` up to ``retry_after_max_s`` (default 5 s) is
  waited out exactly; a longer one ends the retries on this model at once, so the next
  model in the chain answers instead of the caller waiting.
- *Deadline*: a wait is only started when an attempt (at least ``min_attempt_s``) still
  fits after it; each attempt's timeout is the smaller of the model's and the time left.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_random_exponential

from baton.clock import Clock, Deadline
from baton.errors import (
    BatonError,
    UpstreamError,
    UpstreamTimeoutError,
)

T = TypeVar("T")

_RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
# Errors another model may not share: try the next model instead of retrying this one.
# ``breaker_open`` (the model's circuit breaker refused the call) is one of them: asking
# the breaker again within one request's backoff only adds waits, and a cooldown outlasts
# them anyway.
# A stream stalled before its first chunk is not retried either: each wait was a whole
# first-chunk timeout, and another model is the faster way to an answer.
_NEXT_MODEL_CODES = frozenset(
    {
        "context_length_exceeded",
        "upstream_auth_error",
        "upstream_model_not_found",
        "breaker_open",
        "upstream_stream_stalled",
    }
)


class Verdict(enum.Enum):
    RETRY = "retry"  # retry this model, then move on
    NEXT_MODEL = "next_model"  # do not retry this model; another may succeed
    GIVE_UP = "give_up"  # the caller's problem: answer it as it is


def verdict(error: BaseException) -> Verdict:
    """What to do after ``error`` from one attempt."""
    if not isinstance(error, BatonError):
        return Verdict.GIVE_UP
    if error.code in _NEXT_MODEL_CODES:
        return Verdict.NEXT_MODEL
    if isinstance(error, UpstreamTimeoutError):
        return Verdict.RETRY
    if isinstance(error, UpstreamError):
        status = error.upstream_status
        if status is None or status in _RETRYABLE_STATUSES or status >= 500:
            return Verdict.RETRY
        return Verdict.NEXT_MODEL
    return Verdict.GIVE_UP


# The least time worth starting an attempt with (nominal seconds): less cannot finish.
MIN_ATTEMPT_S = 0.5


@dataclass(frozen=True)
class RetryPolicy:
    """Per-model retry settings (defaults in configuration, overrides per model)."""

    attempts: int = 3
    base_delay_s: float = 0.25
    max_delay_s: float = 4.0
    timeout_s: float = 60.0
    retry_after_max_s: float = 5.0
    min_attempt_s: float = MIN_ATTEMPT_S

    def scaled(self, scale: float) -> RetryPolicy:
        """The same policy with every duration multiplied (tests shrink time)."""
        return RetryPolicy(
            attempts=self.attempts,
            base_delay_s=self.base_delay_s * scale,
            max_delay_s=self.max_delay_s * scale,
            timeout_s=self.timeout_s * scale,
            retry_after_max_s=self.retry_after_max_s * scale,
            min_attempt_s=self.min_attempt_s * scale,
        )


Attempt = Callable[[float], Awaitable[T]]  # called with the attempt's timeout in seconds


async def call_with_retries(
    attempt: Attempt[T],
    policy: RetryPolicy,
    deadline: Deadline,
    clock: Clock,
    time_scale: float = 1.0,
) -> T:
    """Run ``attempt`` until it succeeds or the rules above say stop; raises the last
    error (a BatonError whose :func:`verdict` tells the caller whether to fail over).

    ``time_scale`` shrinks upstream ``retry-after`` values like every other duration
    (design decision 10), so a test's "retry-after: 2" takes milliseconds.
    """
    jitter = wait_random_exponential(multiplier=policy.base_delay_s, max=policy.max_delay_s)

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return float(retry_after) * time_scale
        return float(jitter(state))

    def stop(state: RetryCallState) -> bool:
        if state.attempt_number >= policy.attempts:
            return True
        error = state.outcome.exception() if state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None and retry_after * time_scale > policy.retry_after_max_s:
            return True  # a long retry-after: let the next model answer instead
        return deadline.remaining() - state.upcoming_sleep < policy.min_attempt_s

    retrying = AsyncRetrying(
        retry=retry_if_exception(lambda error: verdict(error) is Verdict.RETRY),
        wait=wait,
        stop=stop,
        sleep=clock.sleep,
        reraise=True,
    )
    async for try_ in retrying:
        with try_:
            remaining = deadline.remaining()
            if remaining < policy.min_attempt_s:
                raise UpstreamTimeoutError("The request's deadline leaves no time for an attempt.")
            return await attempt(min(policy.timeout_s, remaining))
    raise AssertionError("unreachable: tenacity either returned or raised")
