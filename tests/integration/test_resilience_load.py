"""Resilience under load: 1,000 requests while about a third of all upstream calls fail
transiently, through the whole request path against the three provider fakes.

Faults are drawn with a fixed seed, per fake, from what each provider really sends when
it struggles: 429 with ``retry-after``, 500, 503, Anthropic's 529, and an answer that
comes after the attempt timeout. Requests are spread over three chain heads, one per
provider, so every provider's errors go through its own SDK and adapter, and every
fallback model is itself under fire. Durations are shrunk with ``BATON_TIME_SCALE`` (see
``test_resilience.py``); the breaker needs 100 calls in its window before it may open,
so it judges the fault rate rather than a small unlucky sample.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from tests.fakes.server import FakeServer, Fault
from tests.plugins.resilience import (
    FALLBACK,
    PRIMARY,
    THIRD,
    Serve,
    Upstreams,
    body,
    send_all,
)

pytestmark = [pytest.mark.anyio, pytest.mark.xdist_group("resilience")]

REQUESTS = 1_000
CONCURRENCY = 16
FAULT_RATE = 0.3
SEED = 20_261_126
PLANNED_CALLS = 1_500  # per fake: more than it receives (faults stop after the plan)
ATTEMPT_TIMEOUT = 16.0  # nominal: 0.8 s
LATE_ANSWER_S = 1.6  # a "timeout" fault: the answer comes after the attempt gave up
RETRY_AFTER = 2.0  # nominal: 0.1 s, short enough to be waited out
DEADLINE_S = 5.0  # each request's baton.timeout_s
# What a request may take past its deadline at the client: the last attempt's outcome
# written to Redis and the usage record, then the response, on a loop shared by
# CONCURRENCY requests and three fake servers.
DEADLINE_SLACK_S = 0.5
STATUSES = {"openai": (429, 500, 503), "anthropic": (429, 503, 529), "google": (429, 500, 503)}


def fault_plan(rng: random.Random, statuses: tuple[int, ...]) -> list[Fault]:
    """One fault (or ``Fault()``, none) per call, FAULT_RATE of them real."""
    plan = []
    for _ in range(PLANNED_CALLS):
        if rng.random() >= FAULT_RATE:
            plan.append(Fault())
            continue
        kind = rng.choice([*statuses, None])
        if kind is None:
            plan.append(Fault(delay_s=LATE_ANSWER_S))
        else:
            plan.append(Fault(status=kind, retry_after=RETRY_AFTER if kind == 429 else None))
    return plan


def faults_received(fake: FakeServer, plan: list[Fault]) -> int:
    """Faults the fake served: its queue hands them out in order, one per request."""
    return sum(fault != Fault() for fault in plan[: len(fake.requests)])


async def test_a_third_of_calls_failing_transiently_costs_time_not_answers(
    serve: Serve, upstreams: Upstreams
) -> None:
    rng = random.Random(SEED)
    plans: dict[str, list[Fault]] = {}
    heads = (PRIMARY, FALLBACK, THIRD)
    async with serve(retry={"timeout_s": ATTEMPT_TIMEOUT}, BATON_BREAKER_MIN_CALLS="100") as app:
        for provider, statuses in STATUSES.items():
            _, fake = upstreams.primary_of(provider)
            plans[provider] = fault_plan(rng, statuses)
            for fault in plans[provider]:
                fake.inject(fault)
        bodies = [
            body(heads[n % len(heads)], n + 1, baton={"timeout_s": DEADLINE_S})
            for n in range(REQUESTS)
        ]
        results = await send_all(app, bodies, CONCURRENCY)

    ok = [timed for timed in results if timed.response.status_code == 200]
    assert len(ok) >= REQUESTS * 0.999, Counter(t.response.text for t in results if t not in ok)
    slowest = max(timed.seconds for timed in results)
    assert slowest <= DEADLINE_S + DEADLINE_SLACK_S

    # The faults really happened, at the planned rate, on every provider...
    calls = sum(len(fake.requests) for fake in upstreams.fakes)
    faults = sum(
        faults_received(upstreams.primary_of(provider)[1], plan) for provider, plan in plans.items()
    )
    assert calls > REQUESTS and faults / calls == pytest.approx(FAULT_RATE, abs=0.05)
    failed_attempts = Counter(
        entry.rpartition(":")[2]
        for timed in results
        for entry in (timed.response.headers.get("x-baton-attempts") or "").split(",")
        if entry
    )
    assert {"429", "500", "503", "529", "deadline_exceeded"} <= set(failed_attempts)
    # ... and retries on the same model absorbed nearly all of them.
    own = sum(
        timed.response.headers.get("x-baton-model") == payload["model"]
        for timed, payload in zip(results, bodies, strict=True)
    )
    assert own >= REQUESTS * 0.9
