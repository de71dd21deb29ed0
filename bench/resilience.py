"""Resilience under faults: success rate and latency of buffered chat completions
through Baton when its primary upstream is healthy, fails a third of its calls
transiently, or is down, side by side in one run.

The upstreams are the OpenAI and Anthropic wire fakes of ``tests/fakes/`` (real HTTP
servers on loopback, in threads of this process); the chain is ``PRIMARY`` (OpenAI) then
``FALLBACK`` (Anthropic). Each scenario gets a fresh ``baton serve`` process with its own
embedded Redis, so no breaker state carries over, and Baton's production resilience
settings (``BATON_TIME_SCALE`` 1: retry backoff, ``retry-after`` handling, breaker window
and cooldown), except an attempt timeout of ``ATTEMPT_TIMEOUT_S`` so that a hung
upstream costs seconds, not a minute.

Scenarios, ``REQUESTS`` requests each after ``WARMUP`` unmeasured ones; each scenario
has its own fakes and its own Baton, all running at once, measured in turns of
``REQUESTS / ROUNDS`` requests so that drift on the machine hits every scenario alike:

- **no faults**: the baseline;
- **30 % transient**: each fake fails ``FAULT_RATE`` of its calls, drawn with a fixed
  seed from 429 (``retry-after: RETRY_AFTER_S``), 500, 503 (or 529 from Anthropic) and an
  answer later than the attempt timeout;
- **primary down**: every call to the primary is a 500; its breaker opens after its
  first ten failures and the rest go straight to the fallback.

Requests go one at a time, so each latency is that request's own: with several in
flight, requests parked in a backoff leave the CPU to the others and the p50 under
faults comes out below the baseline's. Latency is measured at the client, from sending
to the whole response; it includes the fakes' own answer time (about 45 ms for a
buffered answer on a reused loopback connection, the same in every row), so "added",
the difference to the baseline's percentile in the same run, is the number to read.
The run is bounded: ``3 * (WARMUP + REQUESTS)`` requests, each with ``baton.timeout_s``
= ``DEADLINE_S``.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.anthropic_fake import AnthropicFake  # noqa: E402
from tests.fakes.openai_fake import OpenAIFake  # noqa: E402
from tests.fakes.server import FakeServer, Fault  # noqa: E402
from tests.plugins.local_server import start_server  # noqa: E402

PRIMARY = "openai/gpt-5.4-mini"
FALLBACK = "anthropic/claude-sonnet-5-5"
REQUESTS = 240
ROUNDS = 6
WARMUP = 5
FAULT_RATE = 0.3
SEED = 20_261_126
ATTEMPT_TIMEOUT_S = 1.0
LATE_ANSWER_S = 1.5  # the "timeout" fault: later than the attempt timeout
RETRY_AFTER_S = 0.2
DEADLINE_S = 10.0
BENCH_KEY = "bt_bench_resilience_key_0123456789"
STATUSES: dict[str, tuple[int, ...]] = {"openai": (429, 500, 503), "anthropic": (429, 500, 529)}


@dataclass(frozen=True)
class Upstreams:
    openai: OpenAIFake
    anthropic: AnthropicFake

    @property
    def fakes(self) -> dict[str, FakeServer]:
        return {"openai": self.openai, "anthropic": self.anthropic}

    def reset(self) -> None:
        for fake in self.fakes.values():
            fake.reset()

    def calls(self) -> int:
        return sum(len(fake.requests) for fake in self.fakes.values())


@contextmanager
def started_upstreams() -> Iterator[Upstreams]:
    up = Upstreams(OpenAIFake(), AnthropicFake())
    for fake in up.fakes.values():
        fake.start()
    try:
        yield up
    finally:
        for fake in up.fakes.values():
            fake.stop()


def transient_faults(up: Upstreams) -> None:
    """FAULT_RATE of each fake's next calls fail, drawn with a fixed seed."""
    rng = random.Random(SEED)
    for provider, fake in up.fakes.items():
        for _ in range(REQUESTS * 3):
            if rng.random() >= FAULT_RATE:
                fake.inject(Fault())
                continue
            kind = rng.choice([*STATUSES[provider], None])
            if kind is None:
                fake.inject(Fault(delay_s=LATE_ANSWER_S))
            else:
                fake.inject(Fault(status=kind, retry_after=RETRY_AFTER_S if kind == 429 else None))


def primary_down(up: Upstreams) -> None:
    up.openai.inject(Fault(status=500), times=REQUESTS * 3)


SCENARIOS: dict[str, Callable[[Upstreams], None]] = {
    "no faults": lambda up: None,
    "30 % transient faults": transient_faults,
    "primary down (HTTP 500)": primary_down,
}


@contextmanager
def running_baton(up: Upstreams, resilience_file: Path) -> Iterator[str]:
    """A fresh ``baton serve`` (embedded Redis) on the fakes; yields its base URL."""
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            "REDIS_URL": "",  # embedded: a Redis of its own, no breaker state carried over
            "BATON_DEV_API_KEY": BENCH_KEY,
            "BATON_DEV_USER": "bench-resilience",
            "BATON_RESILIENCE_FILE": str(resilience_file),
            "BATON_TIME_SCALE": "1",
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_BASE_URL": up.openai.base_url,
            "ANTHROPIC_API_KEY": "sk-ant-bench",
            "ANTHROPIC_BASE_URL": up.anthropic.url,
        }
        process, url = start_server(Path(data_dir), env)
        try:
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    model: str | None
    seconds: float


@dataclass
class Lane:
    """One scenario: its fakes, its Baton and what its requests got."""

    name: str
    inject: Callable[[Upstreams], None]
    upstreams: Upstreams
    url: str
    outcomes: list[Outcome] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        latencies = [o.seconds * 1000 for o in self.outcomes]
        count = len(self.outcomes)
        return {
            "success_rate": sum(o.ok for o in self.outcomes) / count,
            "by_fallback": sum(o.model == FALLBACK for o in self.outcomes) / count,
            "upstream_calls_per_request": self.upstreams.calls() / count,
            "p50_ms": round(statistics.median(latencies), 1),
            "p99_ms": round(statistics.quantiles(latencies, n=100, method="inclusive")[98], 1),
        }


async def send(client: httpx.AsyncClient, url: str, n: int) -> Outcome:
    body = {
        "model": PRIMARY,
        "messages": [{"role": "user", "content": f"How does the baton lead? ({n})"}],
        "baton": {"timeout_s": DEADLINE_S},
    }
    headers = {"authorization": f"Bearer {BENCH_KEY}"}
    started = time.perf_counter()
    response = await client.post(f"{url}/v1/chat/completions", json=body, headers=headers)
    seconds = time.perf_counter() - started
    return Outcome(response.status_code == 200, response.headers.get("x-baton-model"), seconds)


async def send_many(client: httpx.AsyncClient, url: str, numbers: range) -> list[Outcome]:
    return [await send(client, url, n) for n in numbers]


async def measure(lanes: list[Lane]) -> None:
    """Warm every Baton up (SDK imports, first connections), inject each scenario's
    faults, then measure the lanes in turns."""
    per_round = REQUESTS // ROUNDS
    async with httpx.AsyncClient(timeout=DEADLINE_S + 5) as client:
        for lane in lanes:
            await send_many(client, lane.url, range(WARMUP))
            lane.upstreams.reset()
            lane.inject(lane.upstreams)
        for round_ in range(ROUNDS):
            first = WARMUP + round_ * per_round
            for lane in lanes:
                lane.outcomes += await send_many(client, lane.url, range(first, first + per_round))


def run() -> dict[str, Any]:
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        resilience_file = folder / "resilience.json"
        resilience_file.write_text(
            json.dumps(
                {
                    "chains": {PRIMARY: [FALLBACK], FALLBACK: []},
                    "retry": {"default": {"timeout_s": ATTEMPT_TIMEOUT_S}},
                }
            )
        )
        lanes = []
        for name, inject in SCENARIOS.items():
            up = stack.enter_context(started_upstreams())
            url = stack.enter_context(running_baton(up, resilience_file))
            lanes.append(Lane(name, inject, up, url))
        asyncio.run(measure(lanes))
        results = {lane.name: lane.summary() for lane in lanes}
    return {
        "requests": REQUESTS,
        "rounds": ROUNDS,
        "fault_rate": FAULT_RATE,
        "attempt_timeout_s": ATTEMPT_TIMEOUT_S,
        "retry_after_s": RETRY_AFTER_S,
        "scenarios": results,
    }


def render(result: dict[str, Any]) -> str:
    scenarios: dict[str, dict[str, float]] = result["scenarios"]
    base = scenarios["no faults"]
    lines = [
        f"{result['requests']} buffered requests per scenario, one at a time, in "
        f"{result['rounds']} alternating turns, each scenario through its own "
        f"`baton serve` (embedded Redis) on its own OpenAI (primary) and Anthropic "
        f"(fallback) wire fakes. Production retry and breaker settings, attempt timeout "
        f"{result['attempt_timeout_s']:g} s; transient faults are 429 (retry-after "
        f"{result['retry_after_s']:g} s), 500, 503/529 and late answers, "
        f"{result['fault_rate']:.0%} of each upstream's calls.",
        "",
        "| scenario | success | by fallback | upstream calls / request | p50 (ms) | p99 (ms) "
        "| added p50 (ms) | added p99 (ms) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in scenarios.items():
        lines.append(
            f"| {name} | {row['success_rate']:.1%} | {row['by_fallback']:.1%} "
            f"| {row['upstream_calls_per_request']:.2f} | {row['p50_ms']} | {row['p99_ms']} "
            f"| {row['p50_ms'] - base['p50_ms']:+.1f} | {row['p99_ms'] - base['p99_ms']:+.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    outcome = run()
    print(json.dumps(outcome, indent=2))
    print(render(outcome))
