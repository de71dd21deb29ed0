"""Latency as DDSketch log buckets: counters that merge exactly (design decision 6).

A latency is stored as one increment of a bucket counter, the bucket being the
``ddsketch`` package's ``LogarithmicMapping`` key at 1 % relative accuracy. Bucket
counters add up across instances, days, models and tenants like any other counter, and
a quantile read from the merged counts is still within 1 % of the true value. The
mapping and the quantile both come from ``ddsketch`` itself; only the bucket ids (what
Redis hash fields and DynamoDB attributes are named after) are defined here.

A latency too small for the mapping (zero, or a negative reading from a stepped clock)
goes to the ``zero`` bucket, as DDSketch's own zero count does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ddsketch.ddsketch import BaseDDSketch
from ddsketch.mapping import LogarithmicMapping
from ddsketch.store import DenseStore

RELATIVE_ACCURACY = 0.01
MAPPING = LogarithmicMapping(relative_accuracy=RELATIVE_ACCURACY)
ZERO_BUCKET = "zero"


def bucket_id(latency_ms: float) -> str:
    """The bucket a latency falls in: the mapping's key as text, or ``zero``."""
    if not latency_ms > MAPPING.min_possible:  # also catches NaN
        return ZERO_BUCKET
    return str(MAPPING.key(latency_ms))


@dataclass(frozen=True)
class LatencyHistogram:
    """Counts per bucket id, as read back from storage."""

    buckets: Mapping[str, int] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(self.buckets.values())

    def quantile(self, q: float) -> float | None:
        """The latency (ms) at quantile ``q`` within 1 %, or ``None`` when empty."""
        store = DenseStore()
        zero_count = 0
        for bucket, count in self.buckets.items():
            if bucket == ZERO_BUCKET:
                zero_count += count
            elif count > 0:
                store.add(int(bucket), count)
        sketch = BaseDDSketch(
            mapping=MAPPING, store=store, negative_store=DenseStore(), zero_count=zero_count
        )
        value = sketch.get_quantile_value(q)
        return None if value is None else float(value)
