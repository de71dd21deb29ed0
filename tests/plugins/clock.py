"""A fake clock for time-dependent tests (design decision 10): time moves only when told.

It starts at the real wall-clock time by default. Tests share one real Redis, and data
trimmed by time (breaker incidents, their index) must not be trimmed by a test whose
clock stands years away from everyone else's.
"""

from __future__ import annotations

import time

import pytest


class FakeClock:
    """A :class:`baton.clock.Clock` that stands still until :meth:`advance` (or ``sleep``)."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start
        self._monotonic = 1000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        """Move both readings forward; time never goes back."""
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self.now += seconds
        self._monotonic += seconds

    async def sleep(self, seconds: float) -> None:
        """Returns at once, with the time moved on as if it had slept."""
        self.advance(max(0.0, seconds))


@pytest.fixture
def fake_clock() -> FakeClock:
    """A fake clock standing at the real time the test began."""
    return FakeClock()
