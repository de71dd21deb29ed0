"""The shared circuit breaker (``breaker_allow.lua``, ``breaker_record.lua``), run against a
single Redis and a local Redis Cluster, with a fake clock driving windows and cooldowns.

Covers: the window (min calls, failure rate, time), opening, refusing without upstream
time (a real provider fake reached through the real SDK sees no request while open),
half-open probes (exact count under concurrency, leases, late outcomes), closing with an
incident, re-opening with longer capped cooldowns, exact counts under 200 concurrent
calls, two OS processes agreeing, incident retention and a dead Redis.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from baton.config import Settings
from baton.errors import UpstreamError
from baton.kv import keys
from baton.kv.breaker import BreakerSettings, CircuitBreaker, Permit, State
from baton.kv.client import open_async_client
from baton.kv.exceptions import RedisUnavailableError
from baton.kv.scripts import AsyncClient, SyncClient
from baton.local.embedded_redis import EmbeddedRedis, free_port
from baton.providers.openai import OpenAIProvider
from tests.fakes.openai_fake import OpenAIFake
from tests.fakes.server import Fault
from tests.plugins.adapters import provider_call
from tests.plugins.clock import FakeClock
from tests.plugins.redis import TEST_TIMEOUT_S, KvBackend, open_backend

pytestmark = pytest.mark.anyio

DAY_S = 86_400.0
# Small numbers keep the arithmetic visible: 4 calls at >= 50 % failures open it.
SETTINGS = BreakerSettings(
    window_s=10.0,
    min_calls=4,
    failure_rate=0.5,
    cooldown_s=5.0,
    cooldown_multiplier=2.0,
    max_cooldown_s=12.0,
    half_open_probes=2,
    incident_retention_days=14.0,
    probe_lease_s=30.0,
)


def target_keys(target: str) -> list[str]:
    return [
        keys.breaker_key(target),
        keys.health_key(target),
        keys.breaker_probes_key(target),
        keys.breaker_incidents_key(target),
    ]


def forget(client: SyncClient, target: str) -> None:
    """Remove a test target from Redis (one slot per DEL: cluster-safe)."""
    client.delete(*target_keys(target))
    client.zrem(keys.breaker_index_key(), target)


def new_target() -> str:
    """A model id no other test uses, with characters that need escaping."""
    return f"openai/test-{{cb}}:{uuid.uuid4().hex}"


@pytest.fixture
def target(kv_backend: KvBackend) -> Iterator[str]:
    name = new_target()
    yield name
    forget(kv_backend.sync, name)


@pytest.fixture
def breaker(fake_clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(SETTINGS, fake_clock)


# 200 concurrent calls, spread over clients of 50 as over four Lambda instances: the
# asyncio cluster client has no blocking pool and fails a burst past its 100 connections.
CONCURRENT_CALLS = 200
INSTANCES = 4


@pytest.fixture
async def instances(kv_backend: KvBackend, anyio_backend: str) -> AsyncIterator[list[AsyncClient]]:
    clients = [await kv_backend.async_client() for _ in range(INSTANCES)]
    yield clients
    for client in clients:
        await client.aclose()


async def attempt(
    breaker: CircuitBreaker, client: AsyncClient, target: str, *, ok: bool
) -> tuple[Permit, State | None]:
    """One call as the orchestrator makes it: ask, and record the outcome if let through."""
    permit = await breaker.allow(client, target)
    if not permit.allowed:
        return permit, None
    return permit, await breaker.record(client, target, success=ok, permit=permit)


async def trip(breaker: CircuitBreaker, client: AsyncClient, target: str) -> None:
    """Open the breaker with exactly ``min_calls`` failures."""
    moves = [
        (await attempt(breaker, client, target, ok=False))[1] for _ in range(SETTINGS.min_calls)
    ]
    assert moves == [None] * (SETTINGS.min_calls - 1) + ["open"]


# --- settings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"window_s": 0},
        {"min_calls": 0},
        {"failure_rate": 0},
        {"failure_rate": 1.5},
        {"cooldown_multiplier": 0.5},
        {"cooldown_s": 60, "max_cooldown_s": 30},
        {"half_open_probes": 0},
    ],
)
def test_settings_that_would_wedge_the_breaker_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="invalid breaker settings"):
        BreakerSettings(**bad)


# --- closed ---------------------------------------------------------------------------------


async def test_closed_stays_closed_below_min_calls_and_below_the_rate(
    kv_async: AsyncClient,
    kv_backend: KvBackend,
    breaker: CircuitBreaker,
    fake_clock: FakeClock,
    target: str,
) -> None:
    for _ in range(SETTINGS.min_calls - 1):
        assert (await attempt(breaker, kv_async, target, ok=False))[1] is None
    status = breaker.state(kv_backend.sync, target)
    assert (status.state, status.calls, status.failures) == ("closed", 3, 3)

    for _ in range(5):  # 3 failures in 8 calls: under 50 %
        assert (await attempt(breaker, kv_async, target, ok=True))[1] is None

    status = breaker.state(kv_backend.sync, target)
    assert (status.state, status.calls, status.failures) == ("closed", 8, 3)
    assert status.last_failure_at == pytest.approx(fake_clock.time())
    assert (status.opened_at, status.cooldown_until, status.last_recovery_at) == (None,) * 3
    permit = await breaker.allow(kv_async, target)
    assert permit == Permit(allowed=True, state="closed", probe=False, probe_id=None)


async def test_the_window_forgets_calls_older_than_its_length(
    kv_async: AsyncClient,
    kv_backend: KvBackend,
    breaker: CircuitBreaker,
    fake_clock: FakeClock,
    target: str,
) -> None:
    for _ in range(3):
        await attempt(breaker, kv_async, target, ok=False)
    fake_clock.advance(SETTINGS.window_s)

    # Three old failures left the window: one more is 1 call, under min_calls.
    assert (await attempt(breaker, kv_async, target, ok=False))[1] is None
    status = breaker.state(kv_backend.sync, target)
    assert (status.state, status.calls, status.failures) == ("closed", 1, 1)
    # The script deleted the stale slices: only the current one's two fields remain.
    assert kv_backend.sync.hlen(keys.health_key(target)) == 2


async def test_it_opens_when_the_failure_rate_reaches_the_threshold(
    kv_async: AsyncClient,
    kv_backend: KvBackend,
    breaker: CircuitBreaker,
    fake_clock: FakeClock,
    target: str,
) -> None:
    outcomes = [True, True, False, False]  # 2 of 4 failed: 50 %, at min_calls
    moves = [(await attempt(breaker, kv_async, target, ok=ok))[1] for ok in outcomes]

    assert moves == [None, None, None, "open"]
    now = fake_clock.time()
    status = breaker.state(kv_backend.sync, target)
    assert status.state == "open"
    assert status.opened_at == pytest.approx(now)
    assert status.cooldown_until == pytest.approx(now + SETTINGS.cooldown_s)
    assert (status.calls, status.failures) == (0, 0)  # the window starts afresh
    incident = breaker.open_incident(kv_backend.sync, target)
    assert incident is not None
    assert (incident.provider, incident.model, incident.failures) == ("openai", target, 2)
    assert incident.closed_at is None
    assert target in breaker.targets(kv_backend.sync)


async def test_an_open_breaker_refuses_until_the_cooldown_ends(
    kv_async: AsyncClient, breaker: CircuitBreaker, fake_clock: FakeClock, target: str
) -> None:
    await trip(breaker, kv_async, target)

    fake_clock.advance(SETTINGS.cooldown_s - 0.01)
    refused = await breaker.allow(kv_async, target)
    fake_clock.advance(0.02)
    probe = await breaker.allow(kv_async, target)

    assert refused == Permit(allowed=False, state="open")
    assert (probe.allowed, probe.state, probe.probe) == (True, "half_open", True)
    assert probe.probe_id


# --- through a real provider fake -------------------------------------------------------------


@pytest.fixture
async def openai(openai_fake: OpenAIFake, anyio_backend: str) -> AsyncIterator[OpenAIProvider]:
    adapter = OpenAIProvider(api_key="sk-test-breaker", base_url=openai_fake.base_url)
    yield adapter
    await adapter.aclose()


async def guarded_call(
    breaker: CircuitBreaker, client: AsyncClient, target: str, provider: OpenAIProvider
) -> str:
    """What the orchestrator will do: ask the breaker, call upstream only if allowed."""
    permit = await breaker.allow(client, target)
    if not permit.allowed:
        return "refused"
    try:
        await provider.complete(provider_call("openai/gpt-4.1"))
    except UpstreamError:
        await breaker.record(client, target, success=False, permit=permit)
        return "failed"
    await breaker.record(client, target, success=True, permit=permit)
    return "ok"


async def test_a_failing_provider_gets_no_requests_while_open_and_traffic_returns_after(
    kv_async: AsyncClient,
    kv_backend: KvBackend,
    breaker: CircuitBreaker,
    fake_clock: FakeClock,
    openai_fake: OpenAIFake,
    openai: OpenAIProvider,
    target: str,
) -> None:
    openai_fake.inject(Fault(status=500), times=1000)
    outcomes = [await guarded_call(breaker, kv_async, target, openai) for _ in range(10)]

    assert outcomes == ["failed"] * SETTINGS.min_calls + ["refused"] * 6
    assert len(openai_fake.requests) == SETTINGS.min_calls  # nothing reached it once open

    fake_clock.advance(SETTINGS.cooldown_s)
    openai_fake.reset()  # the provider heals
    outcomes = [await guarded_call(breaker, kv_async, target, openai) for _ in range(5)]

    assert outcomes == ["ok"] * 5  # the first probe closed it; traffic flows again
    assert len(openai_fake.requests) == 5
    incidents = breaker.recent_incidents(kv_backend.sync, target)
    assert len(incidents) == 1
    assert incidents[0].duration_s == pytest.approx(SETTINGS.cooldown_s)
    assert incidents[0].failures == SETTINGS.min_calls


# --- half-open ----------------------------------------------------------------------------------


async def test_half_open_admits_exactly_its_probes_under_concurrency(
    instances: list[AsyncClient],
    kv_backend: KvBackend,
    breaker: CircuitBreaker,
    fake_clock: FakeClock,
    target: str,
) -> None:
    await trip(breaker, instances[0], target)
    fake_clock.advance(SETTINGS.cooldown_s)

    permits = await asyncio.gather(
        *(breaker.allow(instances[n % INSTANCES], target) for n in range(CONCURRENT_CALLS))
    )

    probes = [permit for permit in permits if permit.allowed]
    assert len(probes) == SETTINGS.half_open_probes
    assert all(permit.probe and permit.state == "half_open" for permit in probes)
    assert len({permit.probe_id for permit in probes}) == SETTINGS.half_open_probes
    assert all(not p.probe and p.state == "half_open" for p in permits if not p.allowed)
    status = breaker.state(kv_backend.sync, target)
    assert (status.state, status.probes_in_flight) == ("half_open", SETTINGS.half_open_probes)


async def test_a_probe_that_never_reports_frees_its_slot_after_its_lease(
    kv_async: AsyncClient, breaker: CircuitBreaker, fake_clock: FakeClock, target: str
) -> None:
    await trip(breaker, kv_async, target)
    fake_clock.advance(SETTINGS.cooldown_s)
    for _ in range(SETTINGS.half_open_probes):
        assert (await breaker.allow(kv_async, target)).probe  # these instances die silently

    fake_clock.advance(SETTINGS.probe_lease_s - 0.01)
    assert not (await breaker.allow(kv_async, target)).allowed
    fake_clock.advance(0.02)
    assert (await breaker.allow(kv_async, target)).probe


async def test_a_late_success_of_a_call_admitted_before_opening_does_not_close(
    kv_async: AsyncClient,
    kv_backend: KvBackend,
    breaker: CircuitBreaker,
    fake_clock: FakeClock,
    target: str,
) -> None:
    early = await breaker.allow(kv_async, target)
    await trip(breaker, kv_async, target)
    fake_clock.advance(SETTINGS.cooldown_s)
    assert (await breaker.allow(kv_async, target)).probe  # now half-open

    moved = await breaker.record(kv_async, target, success=True, permit=early)

    assert moved is None
    assert breaker.state(kv_backend.sync, target).state == "half_open"


async def test_a_successful_probe_closes_and_records_the_incident(
    kv_async: AsyncClient,
    kv_backend: KvBackend,
    breaker: CircuitBreaker,
    fake_clock: FakeClock,
    target: str,
) -> None:
    opened_at = fake_clock.time()
    late = await breaker.allow(kv_async, target)  # admitted while closed, fails after opening
    await trip(breaker, kv_async, target)
    assert await breaker.record(kv_async, target, success=False, permit=late) is None
    fake_clock.advance(SETTINGS.cooldown_s)
    failed = await breaker.allow(kv_async, target)
    assert await breaker.record(kv_async, target, success=False, permit=failed) == "open"
    fake_clock.advance(SETTINGS.cooldown_s * SETTINGS.cooldown_multiplier)
    first, second = await breaker.allow(kv_async, target), await breaker.allow(kv_async, target)

    assert await breaker.record(kv_async, target, success=True, permit=first) == "closed"
    # The other probe's outcome arrives after closing: counted as an ordinary call.
    assert await breaker.record(kv_async, target, success=True, permit=second) is None

    closed_at = fake_clock.time()
    (incident,) = breaker.recent_incidents(kv_backend.sync, target)
    assert (incident.provider, incident.model) == ("openai", target)
    assert incident.opened_at == pytest.approx(opened_at)
    assert incident.closed_at == pytest.approx(closed_at)
    assert incident.duration_s == pytest.approx(15.0)
    assert incident.failures == SETTINGS.min_calls + 2  # window + late call + failed probe
    assert incident in breaker.recent_incidents(kv_backend.sync, None, limit=1000)
    assert breaker.open_incident(kv_backend.sync, target) is None
    status = breaker.state(kv_backend.sync, target)
    assert status.state == "closed"
    assert status.last_recovery_at == pytest.approx(closed_at)
    assert (status.opened_at, status.cooldown_until, status.probes_in_flight) == (None, None, 0)
    assert (status.calls, status.failures) == (1, 0)  # a fresh window: only the late probe
    assert target in breaker.targets(kv_backend.sync)


async def test_failed_probes_reopen_with_longer_cooldowns_up_to_the_cap(
    kv_async: AsyncClient,
    kv_backend: KvBackend,
    breaker: CircuitBreaker,
    fake_clock: FakeClock,
    target: str,
) -> None:
    await trip(breaker, kv_async, target)
    fake_clock.advance(SETTINGS.cooldown_s)
    cooldowns = []
    for _ in range(4):
        probe = await breaker.allow(kv_async, target)
        assert probe.probe
        assert await breaker.record(kv_async, target, success=False, permit=probe) == "open"
        until = breaker.state(kv_backend.sync, target).cooldown_until
        assert until is not None
        cooldowns.append(round(until - fake_clock.time(), 6))
        fake_clock.advance(until - fake_clock.time() - 0.01)
        assert not (await breaker.allow(kv_async, target)).allowed
        fake_clock.advance(0.02)

    assert cooldowns == [10.0, 12.0, 12.0, 12.0]  # 5 * 2, then capped at 12


async def test_recording_a_refused_call_is_a_bug(
    kv_async: AsyncClient, breaker: CircuitBreaker, target: str
) -> None:
    refused = Permit(allowed=False, state="open")
    with pytest.raises(ValueError, match="let through"):
        await breaker.record(kv_async, target, success=False, permit=refused)


# --- concurrency ---------------------------------------------------------------------------------


async def test_200_concurrent_calls_are_counted_exactly(
    instances: list[AsyncClient], kv_backend: KvBackend, fake_clock: FakeClock, target: str
) -> None:
    patient = CircuitBreaker(BreakerSettings(window_s=10.0, min_calls=1000), fake_clock)

    await asyncio.gather(
        *(
            attempt(patient, instances[n % INSTANCES], target, ok=n % 10 >= 3)
            for n in range(CONCURRENT_CALLS)
        )
    )

    status = patient.state(kv_backend.sync, target)
    assert (status.state, status.calls, status.failures) == ("closed", 200, 60)


async def test_200_concurrent_failures_open_the_breaker_exactly_once(
    instances: list[AsyncClient], kv_backend: KvBackend, breaker: CircuitBreaker, target: str
) -> None:
    clients = [instances[n % INSTANCES] for n in range(CONCURRENT_CALLS)]
    permits = await asyncio.gather(*(breaker.allow(client, target) for client in clients))
    moves = await asyncio.gather(
        *(
            breaker.record(client, target, success=False, permit=permit)
            for client, permit in zip(clients, permits, strict=True)
        )
    )

    assert moves.count("open") == 1
    assert moves.count(None) == CONCURRENT_CALLS - 1
    incident = breaker.open_incident(kv_backend.sync, target)
    assert incident is not None
    assert incident.failures == 200  # 4 in the window when it opened, 196 late ones


def _trip_in_process(url: str, cluster: bool, target: str, now: float) -> list[str | None]:
    """Open the breaker from another OS process, as another Lambda instance would."""

    async def run() -> list[str | None]:
        client = await open_async_client(
            Settings(redis_url=url, redis_cluster=cluster), timeout_s=TEST_TIMEOUT_S
        )
        try:
            breaker = CircuitBreaker(SETTINGS, FakeClock(now))
            return [(await attempt(breaker, client, target, ok=False))[1] for _ in range(4)]
        finally:
            await client.aclose()

    return asyncio.run(run())


def _allow_in_process(url: str, cluster: bool, target: str, now: float) -> tuple[bool, str]:
    async def run() -> tuple[bool, str]:
        client = await open_async_client(
            Settings(redis_url=url, redis_cluster=cluster), timeout_s=TEST_TIMEOUT_S
        )
        try:
            permit = await CircuitBreaker(SETTINGS, FakeClock(now)).allow(client, target)
        finally:
            await client.aclose()
        return permit.allowed, permit.state

    return asyncio.run(run())


def test_two_processes_sharing_redis_see_the_same_breaker(
    kv_backend: KvBackend, fake_clock: FakeClock, target: str
) -> None:
    url = kv_backend.settings.redis_url
    assert url is not None
    now = fake_clock.time()
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=spawn) as pool:
        before = pool.submit(_allow_in_process, url, kv_backend.cluster, target, now)
        assert before.result(timeout=60) == (True, "closed")
        opened = pool.submit(_trip_in_process, url, kv_backend.cluster, target, now)
        assert opened.result(timeout=60) == [None, None, None, "open"]
        after = pool.submit(_allow_in_process, url, kv_backend.cluster, target, now + 1)
        assert after.result(timeout=60) == (False, "open")

    assert CircuitBreaker(SETTINGS, fake_clock).state(kv_backend.sync, target).state == "open"


# --- incident retention ----------------------------------------------------------------------


@pytest.fixture(params=["single", pytest.param("cluster", marks=pytest.mark.cluster)])
def private_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KvBackend]:
    """A Redis no other worker writes to: a test that moves its clock weeks ahead trims the
    global breaker index by that clock, which would drop other tests' entries on the shared
    Redis. The test cluster belongs to this worker, whose tests run one at a time."""
    if request.param == "cluster":
        with open_backend("cluster", request.getfixturevalue("redis_cluster_url")) as backend:
            yield backend
        return
    with (
        EmbeddedRedis(tmp_path, config={"appendonly": "no"}) as url,
        open_backend("single", url) as backend,
    ):
        yield backend


async def _incident(
    breaker: CircuitBreaker, clock: FakeClock, client: AsyncClient, target: str
) -> None:
    """One whole incident: open, wait out the cooldown, close with a probe."""
    await trip(breaker, client, target)
    clock.advance(SETTINGS.cooldown_s)
    probe = await breaker.allow(client, target)
    assert await breaker.record(client, target, success=True, permit=probe) == "closed"


async def test_incidents_are_kept_for_the_retention_only(
    private_backend: KvBackend, fake_clock: FakeClock, anyio_backend: str
) -> None:
    target = new_target()
    breaker = CircuitBreaker(SETTINGS, fake_clock)
    client = await private_backend.async_client()
    sync = private_backend.sync
    incidents_key = keys.breaker_incidents_key(target)
    try:
        await _incident(breaker, fake_clock, client, target)
        fake_clock.advance(10 * DAY_S)
        await _incident(breaker, fake_clock, client, target)
        second_closed = fake_clock.time()
        fake_clock.advance(5 * DAY_S)

        # 15 days after the first: readers skip it before any writer trims it.
        (shown,) = breaker.recent_incidents(sync, target)
        assert shown.closed_at == pytest.approx(second_closed)
        assert sync.zcard(incidents_key) == 2

        await _incident(breaker, fake_clock, client, target)  # its closing script trims it
        assert sync.zcard(incidents_key) == 2
        assert len(breaker.recent_incidents(sync, None)) >= 2

        fake_clock.advance(15 * DAY_S)
        assert breaker.recent_incidents(sync, target) == []
        assert target not in breaker.targets(sync)
    finally:
        await client.aclose()
        forget(sync, target)


# --- Redis down --------------------------------------------------------------------------------


async def test_a_dead_redis_raises_redis_unavailable_quickly(
    breaker: CircuitBreaker, anyio_backend: str
) -> None:
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    dead = await open_async_client(settings)
    started = time.monotonic()
    try:
        with pytest.raises(RedisUnavailableError, match="circuit breaker"):
            await breaker.allow(dead, "openai/gpt-4.1")
        with pytest.raises(RedisUnavailableError, match="outcome"):
            await breaker.record(
                dead, "openai/gpt-4.1", success=False, permit=Permit(True, "closed")
            )
        with open_backend("single", settings.redis_url or "") as backend:
            with pytest.raises(RedisUnavailableError, match="breaker state"):
                breaker.state(backend.sync, "openai/gpt-4.1")
            with pytest.raises(RedisUnavailableError, match="breaker index"):
                breaker.recent_incidents(backend.sync, None)
    finally:
        await dead.aclose()
    assert time.monotonic() - started < 10  # generous: a hang would take far longer
