"""Passive health of each provider-qualified model, from live traffic, in per-minute buckets.

Every upstream call is counted once (:func:`record_call`, one script, one round trip) in
the hash of its clock minute, ``baton:{cb:<target>}:health:m:<minute>``: ``calls``,
``errors``, DDSketch latency buckets (``lat:<bucket>``, as usage counters keep them) and
``last_failure_at``. :func:`window_stats` merges the last few minutes into an error rate
and a p95 that is within 1 % of the true value (:mod:`baton.kv.latency`).

The minutes share the breaker's hash tag, so they sit on its slot, but not its keys: the
breaker needs an exact sliding window that it clears on every transition, health wants a
steady record with latencies over the last hour. Keeping them apart lets either run
without the other (each can be switched off). The caller sends both writes of one call
concurrently, so they cost one round trip of latency.

These are monitoring data: each minute carries a TTL (:data:`HEALTH_TTL_S`) and may be
evicted under ``volatile-lru``; nothing depends on them for correctness. Failed calls
count with their latency (a timeout is slow as well as failed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from baton.clock import Clock
from baton.kv import keys
from baton.kv.exceptions import REDIS_DOWN_ERRORS, RedisUnavailableError
from baton.kv.latency import LatencyHistogram, bucket_id
from baton.kv.scripts import AsyncClient, LuaScript, SyncClient

RECORD_CALL = LuaScript("health_record")

MINUTE_S = 60
# How long a minute's hash lives after its last write: the longest window one can read.
HEALTH_TTL_S = 3600.0
DEFAULT_WINDOW_MINUTES = 5
LATENCY_PREFIX = "lat:"


@dataclass(frozen=True)
class HealthStats:
    """A model's live traffic over the last few minutes."""

    calls: int
    errors: int
    error_rate: float  # 0.0 without calls
    p95_ms: float | None  # None without calls
    last_failure_at: float | None  # the latest failure within the window


def minute_of(timestamp: float) -> int:
    """The epoch minute a timestamp falls in: what names its health hash."""
    return math.floor(timestamp / MINUTE_S)


async def record_call(
    client: AsyncClient,
    target: str,
    *,
    ok: bool,
    latency_ms: float,
    clock: Clock,
    ttl_s: float = HEALTH_TTL_S,
) -> None:
    """Count one upstream call of ``target`` in its minute; one round trip.

    Raises :class:`RedisUnavailableError` when Redis did not answer; the caller only logs
    it: a lost health sample must never fail a request.
    """
    now = clock.time()
    args: list[float | int | str] = [
        now,
        int(ok),
        LATENCY_PREFIX + bucket_id(latency_ms),
        max(1, round(ttl_s * 1000)),
    ]
    try:
        await RECORD_CALL.run_async(client, [keys.health_minute_key(target, minute_of(now))], args)
    except REDIS_DOWN_ERRORS as exc:
        raise RedisUnavailableError("Redis did not record the call's health") from exc


def window_stats(
    client: SyncClient,
    target: str,
    *,
    clock: Clock,
    minutes: int = DEFAULT_WINDOW_MINUTES,
) -> HealthStats:
    """``target``'s calls over the current minute and the ``minutes - 1`` before it.

    One round trip (a pipeline of HGETALLs on one slot).
    """
    if minutes < 1:
        raise ValueError("a health window spans at least one minute")
    current = minute_of(clock.time())
    pipe = client.pipeline(transaction=False)
    for minute in range(current - minutes + 1, current + 1):
        pipe.hgetall(keys.health_minute_key(target, minute))
    try:
        replies: list[Any] = pipe.execute()
    except REDIS_DOWN_ERRORS as exc:
        raise RedisUnavailableError("Redis did not return the health window") from exc
    return _merge(replies)


def _merge(replies: list[Mapping[bytes | str, bytes | str]]) -> HealthStats:
    """Minute hashes (as HGETALL returns them) added into one set of stats."""
    calls = errors = 0
    buckets: dict[str, int] = {}
    last_failure_at: float | None = None
    for reply in replies:
        for raw_name, raw_value in reply.items():
            name = raw_name.decode() if isinstance(raw_name, bytes) else raw_name
            value = raw_value.decode() if isinstance(raw_value, bytes) else raw_value
            if name == "calls":
                calls += int(value)
            elif name == "errors":
                errors += int(value)
            elif name == "last_failure_at":
                last_failure_at = max(float(value), last_failure_at or 0.0)
            elif name.startswith(LATENCY_PREFIX):
                bucket = name[len(LATENCY_PREFIX) :]
                buckets[bucket] = buckets.get(bucket, 0) + int(value)
    return HealthStats(
        calls=calls,
        errors=errors,
        error_rate=errors / calls if calls else 0.0,
        p95_ms=LatencyHistogram(buckets).quantile(0.95) if calls else None,
        last_failure_at=last_failure_at,
    )
