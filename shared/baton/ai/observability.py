"""Usage recording: every request's tokens, cost and latency, never lost.

The hot path records a :class:`~baton.usage.UsageRecord` in one Redis round trip (one
script, :mod:`baton.kv.usage_counters`); the scheduled aggregation moves the counters
into the store later. When Redis is unreachable the record goes straight to the store
instead (design decision 6: nothing is served unmetered) and the response says
``x-baton-degraded: usage``. A structured log line per request carries the same
numbers and never the prompt, completion or key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aws_lambda_powertools import Logger

from baton.clock import Clock
from baton.kv.exceptions import RedisUnavailableError
from baton.kv.usage_counters import record_usage, usage_increments, utc_day
from baton.store.base import Store
from baton.usage import UsageRecord

logger = Logger(service="baton", child=True)


def aggregate_rows(record: UsageRecord, now: float) -> list[tuple[str, str, dict[str, int]]]:
    """The store rows one record adds to: ``(partition, sort, counters)``.

    The counters are exactly those the Redis script adds
    (:func:`baton.kv.usage_counters.usage_increments`), for the same UTC day: partition
    ``tenant#<user>``, sorts ``d#<day>`` and ``m#<month>`` for the tenant's totals, and the
    same with ``#model#<id>`` appended per model. The aggregation writes the same rows
    from Redis counters, so a usage report reads one shape.
    """
    day = utc_day(now)
    counters = usage_increments(record)
    partition = f"tenant#{record.tenant}"
    sorts = [f"d#{day:%Y-%m-%d}", f"m#{day:%Y-%m}"]
    return [(partition, sort, counters) for sort in sorts] + [
        (partition, f"{sort}#model#{record.model}", counters) for sort in sorts
    ]


class UsageRecorder:
    """Hands each usage record to Redis, or to the store when Redis is down."""

    def __init__(
        self,
        redis: Callable[[], Awaitable[Any]],
        store: Store,
        clock: Clock,
    ) -> None:
        self._redis = redis
        self._store = store
        self._clock = clock

    async def record(self, record: UsageRecord) -> bool:
        """Record ``record``; returns True when it had to take the degraded path."""

        logger.info(
            "usage",
            extra={
                "request_id": record.request_id,
                "tenant": record.tenant,
                "key_id": record.key_id,
                "provider": record.provider,
                "model": record.model,
                "status": record.status,
                "cache": record.cache,
                "stream": record.stream,
                "prompt_tokens": record.tokens.input_tokens,
                "completion_tokens": record.tokens.output_tokens,
                "cost_micro_usd": record.cost_micro_usd,
                "latency_ms": round(record.latency_ms, 1),
            },
        )
        try:
            await record_usage(await self._redis(), record, self._clock)
            return False
        except RedisUnavailableError as exc:
            logger.warning(
                "Redis unreachable; usage written to the store directly",
                extra={"request_id": record.request_id, "error": type(exc).__name__},
            )
            await asyncio.to_thread(self._write_to_store, record)
            return True

    def _write_to_store(self, record: UsageRecord) -> None:
        for partition, sort, counters in aggregate_rows(record, self._clock.time()):
            self._store.add_counters(partition, sort, counters)
