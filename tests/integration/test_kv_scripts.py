"""The Redis script suite, run against a single Redis and a local Redis Cluster.

Covers ``record_usage.lua`` through :func:`record_usage` / :func:`read_usage` (exact
totals under concurrency from tasks, threads and processes; per-model counters; latency
buckets; no TTL), the script loader (slot guard, one registration per client, NOSCRIPT
fallback after ``SCRIPT FLUSH``) and the clients they run on (``ping``, a dead Redis,
URL resolution from SSM / Secrets Manager, per-loop caching).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import redis
from moto import mock_aws
from redis.crc import key_slot

from baton.config import Settings
from baton.kv import client as kv_client
from baton.kv import keys
from baton.kv.client import (
    close_async_client,
    get_async_client,
    get_sync_client,
    open_async_client,
    ping,
    reset_clients,
    resolve_redis_url,
)
from baton.kv.exceptions import CrossSlotError, RedisNotConfiguredError, RedisUnavailableError
from baton.kv.latency import ZERO_BUCKET, bucket_id
from baton.kv.scripts import AsyncClient, SyncClient
from baton.kv.usage_counters import RECORD_USAGE, read_usage, record_usage
from baton.local.embedded_redis import EmbeddedRedis, free_port
from baton.usage import TokenUsage, UsageRecord
from tests.plugins.redis import TEST_TIMEOUT_S, KvBackend, open_backend

pytestmark = pytest.mark.anyio

DAY = date(2026, 11, 26)
OTHER_DAY_SAME_MONTH = date(2026, 11, 3)
MINI = "openai/gpt-5.4-mini"
SONNET = "anthropic/claude-sonnet-4.5"


class FixedClock:
    """A clock standing at noon UTC of a chosen day."""

    def __init__(self, day: date) -> None:
        self.now = datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp()

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def usage(
    tenant: str,
    model: str = MINI,
    *,
    input_tokens: int = 10,
    output_tokens: int = 5,
    cached: int = 0,
    written: int = 0,
    reasoning: int = 0,
    cost: int = 100,
    latency_ms: float = 120.0,
    status: str = "ok",
    cache: str = "miss",
) -> UsageRecord:
    return UsageRecord(
        request_id=uuid.uuid4().hex,
        tenant=tenant,
        key_id="key-1",
        provider=model.split("/")[0],
        model=model,
        tokens=TokenUsage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cached,
            cache_write_tokens=written,
            reasoning_tokens=reasoning,
        ),
        cost_micro_usd=cost,
        latency_ms=latency_ms,
        created_at=FixedClock(DAY).now,
        status=status,
        cache=cache,
    )


def tenant_keys(tenant: str) -> list[str]:
    """Every key a test of ``tenant`` may have written."""
    return [
        keys.usage_key(tenant, period, day)
        for period in ("day", "month")
        for day in (DAY, OTHER_DAY_SAME_MONTH)
    ] + [keys.usage_dirty_key(tenant)]


def forget(client: SyncClient, tenant: str) -> None:
    """Remove a test tenant from the shared Redis (one key per call: cluster-safe)."""
    for key in tenant_keys(tenant):
        client.delete(key)
    for day in (DAY, OTHER_DAY_SAME_MONTH):
        client.srem(keys.usage_index_key(day), tenant)


@pytest.fixture
def tenant(kv_backend: KvBackend) -> Iterator[str]:
    """A tenant id no other test uses, with awkward characters, cleaned up afterwards."""
    name = f"test:{{tenant}}/{uuid.uuid4().hex}"
    yield name
    forget(kv_backend.sync, name)


# --- record_usage and read_usage -------------------------------------------------------------


async def test_record_usage_counts_totals_per_model_and_per_period(
    kv_async: AsyncClient, tenant: str
) -> None:
    clock = FixedClock(DAY)
    await record_usage(
        kv_async,
        usage(tenant, MINI, input_tokens=100, output_tokens=40, cached=30, reasoning=12, cost=7),
        clock,
    )
    await record_usage(
        kv_async,
        usage(tenant, MINI, input_tokens=1, output_tokens=2, written=9, cost=3, status="error"),
        clock,
    )
    await record_usage(
        kv_async,
        usage(tenant, SONNET, input_tokens=0, output_tokens=0, cost=0, cache="exact"),
        clock,
    )

    report = await read_usage(kv_async, tenant, "day", DAY)

    assert report.period_id == "d:2026-11-26"
    totals = report.totals
    assert (totals.requests, totals.errors, totals.cache_hits) == (3, 1, 1)
    assert (totals.prompt_tokens, totals.completion_tokens) == (101, 42)
    assert (totals.cached_tokens, totals.cache_write_tokens, totals.reasoning_tokens) == (30, 9, 12)
    assert totals.cost_micro_usd == 10
    assert set(report.by_model) == {MINI, SONNET}
    mini, sonnet = report.by_model[MINI], report.by_model[SONNET]
    assert (mini.requests, mini.errors, mini.prompt_tokens, mini.cost_micro_usd) == (2, 1, 101, 10)
    assert (sonnet.requests, sonnet.cache_hits, sonnet.prompt_tokens) == (1, 1, 0)
    month = await read_usage(kv_async, tenant, "month", DAY)
    assert month.period_id == "m:2026-11"
    assert month.totals == totals
    assert month.by_model == report.by_model


async def test_days_of_one_month_add_up_in_the_month(kv_async: AsyncClient, tenant: str) -> None:
    await record_usage(kv_async, usage(tenant, cost=5), FixedClock(DAY))
    await record_usage(kv_async, usage(tenant, cost=7), FixedClock(OTHER_DAY_SAME_MONTH))

    day = await read_usage(kv_async, tenant, "day", DAY)
    other = await read_usage(kv_async, tenant, "day", OTHER_DAY_SAME_MONTH)
    month = await read_usage(kv_async, tenant, "month", DAY)

    assert (day.totals.cost_micro_usd, other.totals.cost_micro_usd) == (5, 7)
    assert (month.totals.requests, month.totals.cost_micro_usd) == (2, 12)


async def test_latency_buckets_give_quantiles_within_one_percent(
    kv_async: AsyncClient, tenant: str
) -> None:
    latencies = [10.0 * n for n in range(1, 101)]  # 10 ms .. 1000 ms
    clock = FixedClock(DAY)
    for ms in latencies:
        await record_usage(kv_async, usage(tenant, latency_ms=ms), clock)
    await record_usage(kv_async, usage(tenant, SONNET, latency_ms=0.0), clock)

    report = await read_usage(kv_async, tenant, "day", DAY)

    latency = report.by_model[MINI].latency
    assert latency.count == 100
    assert latency.buckets[bucket_id(500.0)] >= 1
    for q, exact in ((0.5, 500.0), (0.95, 950.0), (0.99, 990.0)):
        value = latency.quantile(q)
        assert value is not None
        assert abs(value - exact) / exact <= 0.01, (q, value)
    assert report.totals.latency.count == 101
    assert report.by_model[SONNET].latency.buckets == {ZERO_BUCKET: 1}
    assert report.by_model[SONNET].latency.quantile(0.5) == 0


async def test_reading_an_unknown_tenant_gives_zeros(kv_async: AsyncClient) -> None:
    report = await read_usage(kv_async, f"nobody-{uuid.uuid4().hex}", "month", DAY)

    assert report.totals.requests == 0
    assert report.by_model == {}
    assert report.totals.latency.quantile(0.5) is None


async def test_counters_carry_no_ttl_and_mark_the_tenant_pending(
    kv_async: AsyncClient, kv_backend: KvBackend, tenant: str
) -> None:
    await record_usage(kv_async, usage(tenant), FixedClock(DAY))

    redis = kv_backend.sync
    for key in (
        keys.usage_key(tenant, "day", DAY),
        keys.usage_key(tenant, "month", DAY),
        keys.usage_dirty_key(tenant),
    ):
        assert redis.ttl(key) == -1, key  # exists, and never expires
    assert redis.smembers(keys.usage_dirty_key(tenant)) == {b"d:2026-11-26", b"m:2026-11"}
    assert redis.sismember(keys.usage_index_key(DAY), tenant)


# --- atomicity under concurrency ---------------------------------------------------------------


async def test_concurrent_tasks_count_exactly(kv_async: AsyncClient, tenant: str) -> None:
    clock = FixedClock(DAY)
    await asyncio.gather(
        *(
            record_usage(kv_async, usage(tenant, input_tokens=n, cost=n), clock)
            for n in range(1, 51)
        )
    )

    report = await read_usage(kv_async, tenant, "day", DAY)

    assert report.totals.requests == 50
    assert report.totals.prompt_tokens == sum(range(1, 51))
    assert report.by_model[MINI].cost_micro_usd == sum(range(1, 51))


async def _record_many(settings: Settings, tenant: str, count: int) -> None:
    """``count`` concurrent records on a client of its own, as one Lambda instance would."""
    client = await open_async_client(settings, timeout_s=TEST_TIMEOUT_S)
    try:
        clock = FixedClock(DAY)
        await asyncio.gather(*(record_usage(client, usage(tenant), clock) for _ in range(count)))
    finally:
        await client.aclose()


def _record_in_process(url: str, cluster: bool, tenant: str, count: int) -> None:
    asyncio.run(_record_many(Settings(redis_url=url, redis_cluster=cluster), tenant, count))


def test_concurrent_threads_count_exactly(kv_backend: KvBackend, tenant: str) -> None:
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            asyncio.run(_record_many(kv_backend.settings, tenant, 25))
        except BaseException as exc:  # reported below: a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors, [repr(error.__cause__ or error) for error in errors]
    assert asyncio.run(_read(kv_backend, tenant)) == (100, 1000)


def test_concurrent_processes_count_exactly(kv_backend: KvBackend, tenant: str) -> None:
    url = kv_backend.settings.redis_url
    assert url is not None
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=3, mp_context=spawn) as pool:
        futures = [
            pool.submit(_record_in_process, url, kv_backend.cluster, tenant, 20) for _ in range(3)
        ]
        for future in futures:
            future.result(timeout=60)

    assert asyncio.run(_read(kv_backend, tenant)) == (60, 600)


async def _read(backend: KvBackend, tenant: str) -> tuple[int, int]:
    client = await backend.async_client()
    try:
        report = await read_usage(client, tenant, "day", DAY)
    finally:
        await client.aclose()
    return report.totals.requests, report.totals.prompt_tokens


# --- the script loader ----------------------------------------------------------------------------


def _tenants_in_different_slots() -> tuple[str, str]:
    first, second = "slot-guard-a", "slot-guard-b"
    assert key_slot(keys.tenant_tag(first).encode()) != key_slot(keys.tenant_tag(second).encode())
    return first, second


def _script_input(tenant: str, other: str | None = None) -> tuple[list[str], list[str | int]]:
    """``record_usage.lua`` input for one request; ``other`` puts the dirty set elsewhere."""
    script_keys = [
        keys.usage_key(tenant, "day", DAY),
        keys.usage_key(tenant, "month", DAY),
        keys.usage_dirty_key(other or tenant),
    ]
    args: list[str | int] = ["m:model:", "d:2026-11-26", "m:2026-11", "requests", 1]
    return script_keys, args


async def test_slot_guard_rejects_keys_of_two_slots_before_redis_sees_them(
    kv_backend: KvBackend, kv_async: AsyncClient
) -> None:
    first, second = _tenants_in_different_slots()
    script_keys, args = _script_input(first, other=second)

    with pytest.raises(CrossSlotError, match="span slots"):
        RECORD_USAGE.run(kv_backend.sync, script_keys, args)
    with pytest.raises(CrossSlotError, match="span slots"):
        await RECORD_USAGE.run_async(kv_async, script_keys, args)
    assert all(kv_backend.sync.exists(key) == 0 for key in script_keys)


def _count_registrations(monkeypatch: pytest.MonkeyPatch, client: Any) -> Callable[[], int]:
    calls: list[str] = []
    original = client.register_script

    def counting(script: str) -> Any:
        calls.append(script)
        return original(script)

    monkeypatch.setattr(client, "register_script", counting)
    return lambda: len(calls)


async def test_each_script_registers_once_per_client(
    kv_backend: KvBackend, kv_async: AsyncClient, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync_registrations = _count_registrations(monkeypatch, kv_backend.sync)
    async_registrations = _count_registrations(monkeypatch, kv_async)
    script_keys, args = _script_input(tenant)

    for _ in range(3):
        RECORD_USAGE.run(kv_backend.sync, script_keys, args)
    await asyncio.gather(
        *(record_usage(kv_async, usage(tenant), FixedClock(DAY)) for _ in range(3))
    )

    assert (sync_registrations(), async_registrations()) == (1, 1)
    assert RECORD_USAGE.registered(kv_backend.sync) is RECORD_USAGE.registered(kv_backend.sync)
    assert (await read_usage(kv_async, tenant, "day", DAY)).totals.requests == 6


@pytest.fixture(params=["single", pytest.param("cluster", marks=pytest.mark.cluster)])
def flushable_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KvBackend]:
    """A backend whose script cache may be flushed: a private server, or the test cluster.

    The shared Redis is not flushed, even of scripts: other suites run beside this one.
    """
    if request.param == "cluster":
        with open_backend("cluster", request.getfixturevalue("redis_cluster_url")) as backend:
            yield backend
        return
    with (
        EmbeddedRedis(tmp_path, config={"appendonly": "no"}) as url,
        open_backend("single", url) as backend,
    ):
        yield backend


async def test_scripts_survive_script_flush(
    flushable_backend: KvBackend, anyio_backend: str
) -> None:
    tenant = f"flush-{uuid.uuid4().hex}"
    client = await flushable_backend.async_client()
    sync = flushable_backend.sync
    try:
        await record_usage(client, usage(tenant), FixedClock(DAY))
        sha = RECORD_USAGE.registered_async(client).sha
        assert sync.script_exists(sha) == [True]

        sync.script_flush()
        assert sync.script_exists(sha) == [False]
        await record_usage(client, usage(tenant), FixedClock(DAY))  # NOSCRIPT -> load -> run
        RECORD_USAGE.run(sync, *_script_input(tenant))

        assert sync.script_exists(sha) == [True]
        assert (await read_usage(client, tenant, "day", DAY)).totals.requests == 3
    finally:
        await client.aclose()
        forget(sync, tenant)


# --- the clients the scripts run on --------------------------------------------------------------


async def test_ping_measures_a_round_trip(kv_async: AsyncClient) -> None:
    latency_ms = await ping(kv_async)

    assert 0 < latency_ms < 5000


async def test_a_dead_redis_fails_fast_with_a_clear_error(anyio_backend: str) -> None:
    dead = await open_async_client(Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    started = time.monotonic()
    try:
        with pytest.raises(RedisUnavailableError, match="PING"):
            await ping(dead)
        with pytest.raises(RedisUnavailableError, match="record usage"):
            await record_usage(dead, usage("nobody"), FixedClock(DAY))
        with pytest.raises(RedisUnavailableError, match="usage"):
            await read_usage(dead, "nobody", "day", DAY)
    finally:
        await dead.aclose()
    assert time.monotonic() - started < 10  # generous: a hang would take far longer


# Busy for a second: Redis runs one script at a time, so every other command waits.
_BUSY_LUA = """
local start = redis.call('TIME')
repeat
  local now = redis.call('TIME')
until (now[1] - start[1]) * 1000000 + (now[2] - start[2]) > 1000000
"""


async def test_a_timed_out_write_is_reported_and_never_sent_twice(
    tmp_path: Path, anyio_backend: str
) -> None:
    tenant = f"timeout-{uuid.uuid4().hex}"
    with EmbeddedRedis(tmp_path, config={"appendonly": "no"}) as url:
        settings = Settings(redis_url=url)
        client = await open_async_client(settings, timeout_s=0.2)
        blocker = redis.Redis.from_url(url)
        try:
            await ping(client)  # connected before Redis gets busy
            busy = threading.Thread(target=blocker.eval, args=(_BUSY_LUA, 0))
            busy.start()
            await asyncio.sleep(0.1)
            with pytest.raises(RedisUnavailableError):
                await record_usage(client, usage(tenant), FixedClock(DAY))
            busy.join()
            # The write reached Redis before the timeout; it runs once the script ends.
            # A retry on timeout would have sent it a second time.
            report = await read_usage(client, tenant, "day", DAY)
            assert report.totals.requests <= 1
        finally:
            await client.aclose()
            blocker.close()


def test_clients_are_cached_per_container_and_per_event_loop(
    kv_backend: KvBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kv_client, "get_settings", lambda: kv_backend.settings)
    reset_clients()

    async def loop_client(*, close_by_hand: bool) -> AsyncClient:
        clients = await asyncio.gather(*(get_async_client() for _ in range(10)))
        assert all(client is clients[0] for client in clients)  # opened once, concurrently
        await ping(clients[0])
        if close_by_hand:  # the entry stays, with a loop about to close
            await clients[0].aclose()
        else:
            await close_async_client()
            assert kv_client._clients.by_loop == {}
        return clients[0]

    try:
        first = asyncio.run(loop_client(close_by_hand=True))
        assert len(kv_client._clients.by_loop) == 1
        second = asyncio.run(loop_client(close_by_hand=False))  # prunes the closed loop
        assert first is not second  # a client belongs to the loop that opened it
        sync = get_sync_client()
        assert get_sync_client() is sync
        assert sync.ping()
        reset_clients()
        assert get_sync_client() is not sync
    finally:
        reset_clients()


def test_the_url_may_come_from_ssm_or_secrets_manager(aws_credentials: None) -> None:
    suffix = uuid.uuid4().hex
    with mock_aws():
        boto3.client("ssm").put_parameter(
            Name=f"/baton/{suffix}/redis-url", Value="rediss://ssm:6379/0", Type="SecureString"
        )
        secrets = boto3.client("secretsmanager")
        arn = secrets.create_secret(Name=f"baton-{suffix}", SecretString="rediss://sm:6379/0")[
            "ARN"
        ]
        secrets.create_secret(Name=f"bad-{suffix}", SecretString="not a url")

        def resolve(parameter: str) -> str:
            return resolve_redis_url(Settings(redis_url=None, redis_url_parameter=parameter))

        assert resolve(f"/baton/{suffix}/redis-url") == "rediss://ssm:6379/0"
        assert resolve(f"baton-{suffix}") == "rediss://sm:6379/0"
        assert resolve(arn) == "rediss://sm:6379/0"
        with pytest.raises(RedisNotConfiguredError, match="does not hold"):
            resolve(f"bad-{suffix}")
    with pytest.raises(RedisNotConfiguredError, match="REDIS_URL"):
        resolve_redis_url(Settings(redis_url=None, redis_url_parameter=None))
