"""Passive health windows (``health_record.lua``), against a single Redis and a local
Redis Cluster: error rate and p95 from live calls, merged over minutes, their expiry by
the clock and by TTL, exact counts under concurrency, and a dead Redis.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest

from baton.config import Settings
from baton.kv import keys
from baton.kv.client import open_async_client
from baton.kv.exceptions import RedisUnavailableError
from baton.kv.health import HEALTH_TTL_S, minute_of, record_call, window_stats
from baton.kv.scripts import AsyncClient
from baton.local.embedded_redis import free_port
from tests.plugins.clock import FakeClock
from tests.plugins.redis import KvBackend, open_backend

pytestmark = pytest.mark.anyio

# Minutes around the test's start that its cleanup deletes (tests move an hour at most).
CLEANUP_MINUTES = 90


@pytest.fixture
def target(kv_backend: KvBackend, fake_clock: FakeClock) -> Iterator[str]:
    """A model id no other test uses; its minute hashes are deleted afterwards."""
    name = f"anthropic/test-{{h}}:{uuid.uuid4().hex}"
    first = minute_of(fake_clock.time())
    yield name
    kv_backend.sync.delete(
        *(keys.health_minute_key(name, minute) for minute in range(first, first + CLEANUP_MINUTES))
    )


async def test_error_rate_and_p95_over_several_minutes(
    kv_async: AsyncClient, kv_backend: KvBackend, fake_clock: FakeClock, target: str
) -> None:
    latencies = [5.0 * n for n in range(1, 201)]  # 5 ms .. 1000 ms
    for n, latency_ms in enumerate(latencies):
        await record_call(kv_async, target, ok=n % 8 != 0, latency_ms=latency_ms, clock=fake_clock)
        if n % 50 == 49:
            fake_clock.advance(50.0)  # spread over four minute hashes

    stats = window_stats(kv_backend.sync, target, clock=fake_clock)

    assert (stats.calls, stats.errors) == (200, 25)
    assert stats.error_rate == pytest.approx(25 / 200)
    exact = sorted(latencies)[round(0.95 * (len(latencies) - 1))]
    assert stats.p95_ms is not None
    assert abs(stats.p95_ms - exact) / exact <= 0.02, (stats.p95_ms, exact)


async def test_the_window_keeps_only_its_minutes(
    kv_async: AsyncClient, kv_backend: KvBackend, fake_clock: FakeClock, target: str
) -> None:
    await record_call(kv_async, target, ok=False, latency_ms=900.0, clock=fake_clock)
    failed_at = fake_clock.time()
    fake_clock.advance(5 * 60.0)
    await record_call(kv_async, target, ok=True, latency_ms=100.0, clock=fake_clock)

    recent = window_stats(kv_backend.sync, target, clock=fake_clock, minutes=5)
    longer = window_stats(kv_backend.sync, target, clock=fake_clock, minutes=10)

    assert (recent.calls, recent.errors, recent.last_failure_at) == (1, 0, None)
    assert recent.p95_ms == pytest.approx(100.0, rel=0.01)
    assert (longer.calls, longer.errors, longer.error_rate) == (2, 1, 0.5)
    assert longer.last_failure_at == pytest.approx(failed_at)


async def test_the_latest_failure_wins_whatever_order_instances_report_in(
    kv_async: AsyncClient, kv_backend: KvBackend, fake_clock: FakeClock, target: str
) -> None:
    behind = FakeClock(fake_clock.time())
    fake_clock.advance(10.0)
    minute = minute_of(fake_clock.time())
    if minute_of(behind.time()) != minute:  # keep both in one minute hash
        behind.advance(10.0)
        fake_clock.advance(10.0)

    await record_call(kv_async, target, ok=False, latency_ms=50.0, clock=fake_clock)
    await record_call(kv_async, target, ok=False, latency_ms=50.0, clock=behind)

    stats = window_stats(kv_backend.sync, target, clock=fake_clock)
    assert stats.errors == 2
    assert stats.last_failure_at == pytest.approx(fake_clock.time())


async def test_minutes_carry_a_ttl_and_expire(
    kv_async: AsyncClient, kv_backend: KvBackend, fake_clock: FakeClock, target: str
) -> None:
    key = keys.health_minute_key(target, minute_of(fake_clock.time()))
    await record_call(kv_async, target, ok=True, latency_ms=20.0, clock=fake_clock)
    assert 0 < kv_backend.sync.pttl(key) <= HEALTH_TTL_S * 1000

    await record_call(kv_async, target, ok=True, latency_ms=20.0, clock=fake_clock, ttl_s=0.2)

    for _ in range(200):  # generous, 10 s: Redis expires it 0.2 s from now
        if not kv_backend.sync.exists(key):
            break
        await asyncio.sleep(0.05)
    assert window_stats(kv_backend.sync, target, clock=fake_clock).calls == 0


async def test_an_unknown_model_has_empty_stats(
    kv_backend: KvBackend, fake_clock: FakeClock, target: str
) -> None:
    stats = window_stats(kv_backend.sync, target, clock=fake_clock)

    assert (stats.calls, stats.errors, stats.error_rate) == (0, 0, 0.0)
    assert (stats.p95_ms, stats.last_failure_at) == (None, None)


def test_a_window_has_at_least_one_minute(kv_backend: KvBackend, fake_clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="at least one minute"):
        window_stats(kv_backend.sync, "openai/gpt-4.1", clock=fake_clock, minutes=0)


async def test_concurrent_calls_are_counted_exactly(
    kv_async: AsyncClient, kv_backend: KvBackend, fake_clock: FakeClock, target: str
) -> None:
    # 80 at once: within one asyncio cluster client's 100 connections.
    await asyncio.gather(
        *(
            record_call(kv_async, target, ok=n % 4 != 0, latency_ms=10.0 + n, clock=fake_clock)
            for n in range(80)
        )
    )

    stats = window_stats(kv_backend.sync, target, clock=fake_clock, minutes=1)
    assert (stats.calls, stats.errors) == (80, 20)


async def test_a_dead_redis_raises_redis_unavailable_quickly(
    fake_clock: FakeClock, anyio_backend: str
) -> None:
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    dead = await open_async_client(settings)
    started = time.monotonic()
    try:
        with pytest.raises(RedisUnavailableError, match="health"):
            await record_call(dead, "openai/gpt-4.1", ok=True, latency_ms=1.0, clock=fake_clock)
        with (
            open_backend("single", settings.redis_url or "") as backend,
            pytest.raises(RedisUnavailableError, match="health window"),
        ):
            window_stats(backend.sync, "openai/gpt-4.1", clock=fake_clock)
    finally:
        await dead.aclose()
    assert time.monotonic() - started < 10  # generous: a hang would take far longer
