"""One injectable clock and one set of durations (design decision 10).

Rate-limit windows, breaker cooldowns, TTLs and deadlines all read the clock and
durations defined here, so a test can shrink "one minute" to a fraction of a second
with ``BATON_TIME_SCALE`` instead of sleeping for real.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    """What every time-dependent step reads instead of :mod:`time`."""

    def time(self) -> float:
        """Wall-clock seconds since the epoch (for timestamps and windows)."""
        ...

    def monotonic(self) -> float:
        """Monotonic seconds (for deadlines and latencies)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait; a fake clock may return at once."""
        ...


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


@dataclass(frozen=True)
class Durations:
    """Named durations, all multiplied by one scale factor.

    ``scale`` is 1.0 in production; tests set it to e.g. 0.01 so that a 60 s window
    lasts 0.6 s while every ratio between durations stays the same.
    """

    scale: float = 1.0

    def seconds(self, nominal: float) -> float:
        """The real length of a duration that is ``nominal`` seconds in production."""
        return nominal * self.scale

    @property
    def minute(self) -> float:
        return self.seconds(60.0)


class Deadline:
    """The moment by which a request must be answered, read from one clock."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        self._clock = clock
        self._at = clock.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left; never negative."""
        return max(0.0, self._at - self._clock.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0
