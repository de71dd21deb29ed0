"""Usage counters in Redis: written once per request, read by GET /v2/usage and the aggregator.

:func:`record_usage` runs ``record_usage.lua`` once per request: under the tenant's hash
tag it adds the request to the tenant's day and month hashes, as totals and per model,
and marks both periods dirty for the aggregator. Beside it, in the same round trip, the
tenant joins the day's usage index (another slot), which is how the aggregator finds
whom to read. Hash fields:

==============================  =================================================
Field                           Meaning
==============================  =================================================
``requests``                    every request, cache hits and errors included
``errors``                      requests that ended with ``status == "error"``
``cache_hits``                  answers served from the cache (no tokens, no cost)
``prompt_tokens``               input tokens, cached ones included
``completion_tokens``           output tokens, reasoning included
``cached_tokens``               input tokens read from the provider's prompt cache
``cache_write_tokens``          input tokens written to the provider's prompt cache
``reasoning_tokens``            output tokens spent on reasoning
``cost_micro_usd``              cost in integer micro-dollars
``lat:<bucket>``                requests whose latency fell in that DDSketch bucket
``m:<model>:<any of the above>``  the same, for one provider-qualified model
==============================  =================================================

The model id is escaped (:func:`baton.kv.keys.escape`), so it never holds a ``:``.
Counters carry no TTL (design decision 2); the aggregator deletes old periods.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from baton.clock import Clock
from baton.kv import keys
from baton.kv.exceptions import REDIS_DOWN_ERRORS, RedisUnavailableError
from baton.kv.latency import LatencyHistogram, bucket_id
from baton.kv.scripts import AsyncClient, LuaScript
from baton.usage import UsageRecord

logger = logging.getLogger(__name__)

RECORD_USAGE = LuaScript("record_usage")

COUNTERS = (
    "requests",
    "errors",
    "cache_hits",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_micro_usd",
)
LATENCY_PREFIX = "lat:"
MODEL_PREFIX = "m:"
CACHE_HITS = frozenset({"exact", "semantic"})


@dataclass(frozen=True)
class UsageCounters:
    """The counters of one tenant (or one of its models) over one period."""

    requests: int = 0
    errors: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_micro_usd: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)


@dataclass(frozen=True)
class UsageReport:
    """What Redis holds for a tenant over a day or a month, aggregated or not."""

    tenant: str
    period: keys.Period
    period_id: str
    totals: UsageCounters
    by_model: Mapping[str, UsageCounters]


def utc_day(timestamp: float) -> date:
    """The UTC calendar day of a wall-clock timestamp: usage periods are UTC."""
    return datetime.fromtimestamp(timestamp, tz=UTC).date()


def usage_increments(record: UsageRecord) -> dict[str, int]:
    """The hash fields one request adds to; zero increments are left out."""
    tokens = record.tokens
    increments = {
        "requests": 1,
        "errors": int(record.status == "error"),
        "cache_hits": int(record.cache in CACHE_HITS),
        "prompt_tokens": tokens.input_tokens,
        "completion_tokens": tokens.output_tokens,
        "cached_tokens": tokens.cache_read_tokens,
        "cache_write_tokens": tokens.cache_write_tokens,
        "reasoning_tokens": tokens.reasoning_tokens,
        "cost_micro_usd": record.cost_micro_usd,
        LATENCY_PREFIX + bucket_id(record.latency_ms): 1,
    }
    return {name: int(value) for name, value in increments.items() if value}


async def record_usage(client: AsyncClient, record: UsageRecord, clock: Clock) -> None:
    """Count one request, in one round trip, atomically per tenant.

    The period is the UTC day of ``clock.time()`` when recording. Raises
    :class:`RedisUnavailableError` when Redis did not confirm the counters, so the caller
    can write the usage to the store instead (nothing is served unmetered). After a
    refused connection nothing was written; after a timeout the script may still run,
    once (the clients never resend a timed-out command), so that rare case can count a
    request twice, never zero times. A failure of the index write alone is only logged:
    the counters are in, and raising would make the caller count the request again; the
    tenant rejoins the index with its next request of the day.
    """
    day = utc_day(clock.time())
    tenant = record.tenant
    script_keys = [
        keys.usage_key(tenant, "day", day),
        keys.usage_key(tenant, "month", day),
        keys.usage_dirty_key(tenant),
    ]
    args: list[str | int] = [
        f"{MODEL_PREFIX}{keys.escape(record.model)}:",
        keys.period_id("day", day),
        keys.period_id("month", day),
    ]
    for name, increment in usage_increments(record).items():
        args += [name, increment]
    outcomes: tuple[object, object] = await asyncio.gather(
        RECORD_USAGE.run_async(client, script_keys, args),
        client.sadd(keys.usage_index_key(day), tenant),
        return_exceptions=True,
    )
    counted, indexed = outcomes
    if isinstance(counted, REDIS_DOWN_ERRORS):
        raise RedisUnavailableError("Redis did not record usage") from counted
    if isinstance(counted, BaseException):
        raise counted
    if isinstance(indexed, BaseException):
        logger.warning(
            "usage recorded but the usage index was not updated",
            extra={"tenant": tenant, "error": type(indexed).__name__},
        )


def parse_usage(
    fields: Mapping[bytes | str, bytes | str], tenant: str, period: keys.Period, day: date
) -> UsageReport:
    """A usage hash as read with HGETALL (bytes or decoded) turned into a report.

    Public so a sync caller (the usage Lambda) can run its own HGETALL on
    :func:`baton.kv.keys.usage_key` and share this parsing.
    """
    counts: dict[str, dict[str, int]] = {}
    for raw_name, raw_value in fields.items():
        name = raw_name.decode() if isinstance(raw_name, bytes) else raw_name
        value = int(raw_value)
        model = ""  # "" holds the totals
        if name.startswith(MODEL_PREFIX):
            escaped_model, _, name = name[len(MODEL_PREFIX) :].partition(":")
            model = keys.unescape(escaped_model)
        counts.setdefault(model, {})[name] = value
    by_model = {model: _counters(values) for model, values in counts.items() if model}
    return UsageReport(
        tenant=tenant,
        period=period,
        period_id=keys.period_id(period, day),
        totals=_counters(counts.get("", {})),
        by_model=by_model,
    )


def _counters(values: Mapping[str, int]) -> UsageCounters:
    """Known fields become counters; unknown ones (a newer writer's) are ignored."""
    buckets = {
        name[len(LATENCY_PREFIX) :]: count
        for name, count in values.items()
        if name.startswith(LATENCY_PREFIX)
    }
    return UsageCounters(
        **{name: values.get(name, 0) for name in COUNTERS},
        latency=LatencyHistogram(buckets),
    )


async def read_usage(
    client: AsyncClient, tenant: str, period: keys.Period, day: date
) -> UsageReport:
    """A tenant's counters for the day or month containing ``day``, in one HGETALL."""
    try:
        fields = await client.hgetall(keys.usage_key(tenant, period, day))
    except REDIS_DOWN_ERRORS as exc:
        raise RedisUnavailableError("Redis did not return usage") from exc
    return parse_usage(fields, tenant, period, day)
