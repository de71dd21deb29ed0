"""Retries on one model, driven by a fake clock: what is retried, how long it waits,
and that nothing starts which cannot finish before the deadline."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from baton.ai.retry import RetryPolicy, Verdict, call_with_retries, verdict
from baton.clock import Deadline
from baton.errors import (
    BatonError,
    InvalidRequestError,
    NotFoundError,
    UpstreamError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from baton.providers.base import error_from_status
from tests.plugins.clock import FakeClock

pytestmark = pytest.mark.anyio

POLICY = RetryPolicy(attempts=3, base_delay_s=1.0, max_delay_s=8.0, timeout_s=30.0)


class Upstream:
    """Fails with the queued errors, then answers; records each attempt's time."""

    def __init__(self, clock: FakeClock, *errors: BatonError) -> None:
        self.clock = clock
        self.errors = list(errors)
        self.calls: list[tuple[float, float]] = []  # (monotonic time, timeout)

    async def __call__(self, timeout: float) -> str:  # noqa: ASYNC109 - the retry contract
        self.calls.append((self.clock.monotonic(), timeout))
        if self.errors:
            raise self.errors.pop(0)
        return "answer"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (408, Verdict.RETRY),
        (409, Verdict.RETRY),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (503, Verdict.RETRY),
        (529, Verdict.RETRY),
        (None, Verdict.RETRY),  # connection refused
        (400, Verdict.GIVE_UP),
        (422, Verdict.GIVE_UP),
        (401, Verdict.NEXT_MODEL),  # the provider refused Baton's credentials
        (403, Verdict.NEXT_MODEL),
        (404, Verdict.NEXT_MODEL),  # the model is unknown upstream
    ],
)
def test_verdicts_follow_the_upstream_status(status: int | None, expected: Verdict) -> None:
    assert verdict(error_from_status("openai", status, "boom")) is expected


def test_context_length_moves_on_and_caller_errors_are_returned() -> None:
    context = error_from_status("openai", 400, "maximum context length", context_length=True)
    assert verdict(context) is Verdict.NEXT_MODEL
    assert verdict(InvalidRequestError("content policy", code="content_filter")) is Verdict.GIVE_UP
    assert verdict(UpstreamTimeoutError("slow")) is Verdict.RETRY


def test_open_breakers_and_stalled_streams_move_on_without_retrying() -> None:
    assert verdict(UpstreamUnavailableError("open", code="breaker_open")) is Verdict.NEXT_MODEL
    stalled = UpstreamTimeoutError("quiet", code="upstream_stream_stalled")
    assert verdict(stalled) is Verdict.NEXT_MODEL


async def test_transient_errors_are_retried_with_growing_jittered_waits(
    fake_clock: FakeClock,
) -> None:
    upstream = Upstream(
        fake_clock,
        UpstreamUnavailableError("a", upstream_status=503),
        UpstreamError("b", upstream_status=500),
    )
    answer = await call_with_retries(upstream, POLICY, Deadline(fake_clock, 60), fake_clock)
    assert answer == "answer" and len(upstream.calls) == 3
    waits = [b[0] - a[0] for a, b in zip(upstream.calls, upstream.calls[1:], strict=False)]
    assert 0 <= waits[0] <= 1.0 + 1e-9  # full jitter below base * 2^0
    assert 0 <= waits[1] <= 2.0 + 1e-9  # ... and below base * 2^1


async def test_attempts_are_bounded(fake_clock: FakeClock) -> None:
    errors = [UpstreamUnavailableError(str(i), upstream_status=503) for i in range(5)]
    upstream = Upstream(fake_clock, *errors)
    with pytest.raises(UpstreamUnavailableError):
        await call_with_retries(upstream, POLICY, Deadline(fake_clock, 60), fake_clock)
    assert len(upstream.calls) == 3


async def test_a_short_retry_after_is_waited_out_exactly(fake_clock: FakeClock) -> None:
    upstream = Upstream(
        fake_clock, UpstreamUnavailableError("x", upstream_status=429, retry_after=2.5)
    )
    assert (
        await call_with_retries(upstream, POLICY, Deadline(fake_clock, 60), fake_clock) == "answer"
    )
    assert upstream.calls[1][0] - upstream.calls[0][0] == pytest.approx(2.5)


async def test_a_long_retry_after_gives_up_at_once(fake_clock: FakeClock) -> None:
    upstream = Upstream(
        fake_clock, UpstreamUnavailableError("x", upstream_status=429, retry_after=30)
    )
    before = fake_clock.monotonic()
    with pytest.raises(UpstreamUnavailableError):
        await call_with_retries(upstream, POLICY, Deadline(fake_clock, 60), fake_clock)
    assert len(upstream.calls) == 1 and fake_clock.monotonic() == before


async def test_no_wait_starts_that_the_deadline_cannot_afford(fake_clock: FakeClock) -> None:
    upstream = Upstream(
        fake_clock, UpstreamUnavailableError("x", upstream_status=429, retry_after=3)
    )
    deadline = Deadline(fake_clock, 3.2)  # a 3 s wait would leave 0.2 s < min_attempt_s
    with pytest.raises(UpstreamUnavailableError):
        await call_with_retries(upstream, POLICY, deadline, fake_clock)
    assert len(upstream.calls) == 1


async def test_each_attempt_gets_the_smaller_of_its_timeout_and_the_time_left(
    fake_clock: FakeClock,
) -> None:
    upstream = Upstream(fake_clock)
    await call_with_retries(upstream, POLICY, Deadline(fake_clock, 12), fake_clock)
    assert upstream.calls[0][1] == pytest.approx(12)
    upstream = Upstream(fake_clock)
    await call_with_retries(upstream, POLICY, Deadline(fake_clock, 100), fake_clock)
    assert upstream.calls[0][1] == pytest.approx(30)


async def test_non_retryable_errors_are_raised_after_one_attempt(fake_clock: FakeClock) -> None:
    for error in (
        InvalidRequestError("bad"),
        NotFoundError("gone", code="upstream_model_not_found"),
    ):
        upstream = Upstream(fake_clock, error)
        with pytest.raises(type(error)):
            await call_with_retries(upstream, POLICY, Deadline(fake_clock, 60), fake_clock)
        assert len(upstream.calls) == 1


async def test_time_scale_shrinks_retry_after(fake_clock: FakeClock) -> None:
    upstream = Upstream(
        fake_clock, UpstreamUnavailableError("x", upstream_status=429, retry_after=2)
    )
    policy: Callable[[float], RetryPolicy] = POLICY.scaled
    await call_with_retries(
        upstream, policy(0.01), Deadline(fake_clock, 1), fake_clock, time_scale=0.01
    )
    assert upstream.calls[1][0] - upstream.calls[0][0] == pytest.approx(0.02)
