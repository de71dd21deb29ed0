"""The circuit breaker of each provider-qualified model, shared by every instance through Redis.

One breaker per target (``openai/gpt-5.4-mini``)::

    closed --(failure rate >= threshold over the window, with >= min_calls)--> open
    open --(cooldown over; the next allow() makes the move)--> half_open
    half_open --(a probe succeeds)--> closed      (the incident is recorded)
    half_open --(a probe fails)--> open           (cooldown * multiplier, capped)

Every transition is one Lua script (``breaker_allow.lua``, ``breaker_record.lua``) on
keys under the target's hash tag ``{cb:<target>}``, so any number of Lambda instances
agree on the state, on a single Redis or a cluster. Time is the caller's
:class:`~baton.clock.Clock`, passed into each script (never Redis ``TIME``), so tests
drive cooldowns with a fake clock.

Choices worth knowing:

- **The window** is ``window_s`` cut into :data:`WINDOW_SLICES` slices of call and
  failure counts in one hash, trimmed by time in the same script; it is read only while
  closed and cleared on every transition, so a recovered model starts with a clean slate.
  "Passes the threshold" means a failure rate *at least* ``failure_rate``.
- **Half-open** lets ``half_open_probes`` probes through at a time, each holding a lease
  of ``probe_lease_s`` (a probe whose instance dies before reporting frees its slot when
  the lease ends). **The first successful probe closes the breaker**: recovery is not
  delayed by slow siblings, and a model that is still flaky re-opens through the window.
  Any failed probe re-opens it at once, with a longer cooldown.
- **What counts as a failure** is the caller's call (upstream 5xx, timeouts, refused
  connections; not a caller's 4xx). Only calls that went upstream are recorded.
- **Incidents**: from opening to closing, ``opened_at`` and the failures seen (the
  window's when it opened, then every failure while open or half-open) are kept in the
  state hash; the closing script appends the incident to the target's sorted set and
  trims it to ``incident_retention_days``. Targets whose breaker changed state are
  indexed in :func:`~baton.kv.keys.breaker_index_key` (another slot, written right after a
  transition, so only the rare transitioning call pays that round trip) so the health
  endpoint finds them without KEYS or SCAN.
- **Redis down**: every method raises :class:`RedisUnavailableError`. The caller fails
  open: it treats the model as closed and calls upstream (a breaker must never be the
  reason nothing works), and says so in ``x-baton-degraded``.

The breaker does not keep latency: passive monitoring (error rate, p95) is
:mod:`baton.kv.health`, written beside :meth:`CircuitBreaker.record` in the same slot.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from baton.clock import Clock
from baton.kv import keys
from baton.kv.exceptions import REDIS_DOWN_ERRORS, RedisUnavailableError
from baton.kv.scripts import AsyncClient, LuaScript, SyncClient

logger = logging.getLogger(__name__)

ALLOW = LuaScript("breaker_allow")
RECORD = LuaScript("breaker_record")

State = Literal["closed", "open", "half_open"]
STATES: tuple[State, ...] = ("closed", "open", "half_open")

# Slices per window: a call leaves the window at most window_s / 10 late.
WINDOW_SLICES = 10
DAY_S = 86_400.0


@dataclass(frozen=True)
class BreakerSettings:
    """The breaker's tuning; durations in seconds of the injected clock."""

    window_s: float = 60.0
    min_calls: int = 10
    failure_rate: float = 0.5
    cooldown_s: float = 30.0
    cooldown_multiplier: float = 2.0
    max_cooldown_s: float = 600.0
    half_open_probes: int = 3
    incident_retention_days: float = 14.0
    # How long a probe may hold its half-open slot without reporting back.
    probe_lease_s: float = 60.0

    def __post_init__(self) -> None:
        """Reject settings that would make the breaker never open or never close."""
        problems = [
            name
            for name, ok in (
                ("window_s", self.window_s > 0),
                ("min_calls", self.min_calls >= 1),
                ("failure_rate", 0 < self.failure_rate <= 1),
                ("cooldown_s", self.cooldown_s > 0),
                ("cooldown_multiplier", self.cooldown_multiplier >= 1),
                ("max_cooldown_s", self.max_cooldown_s >= self.cooldown_s),
                ("half_open_probes", self.half_open_probes >= 1),
                ("incident_retention_days", self.incident_retention_days > 0),
                ("probe_lease_s", self.probe_lease_s > 0),
            )
            if not ok
        ]
        if problems:
            raise ValueError(f"invalid breaker settings: {', '.join(problems)}")

    @property
    def slice_s(self) -> float:
        return self.window_s / WINDOW_SLICES

    @property
    def incident_retention_s(self) -> float:
        return self.incident_retention_days * DAY_S


@dataclass(frozen=True)
class Permit:
    """The breaker's answer for one call. Hand it back to :meth:`CircuitBreaker.record`."""

    allowed: bool
    state: State
    probe: bool = False
    probe_id: str | None = None  # the probe's lease, when ``probe``


@dataclass(frozen=True)
class BreakerStatus:
    """A breaker as ``/v2/health`` shows it."""

    target: str
    # The effective state: an open breaker whose cooldown is over reads half_open, which
    # it becomes on the next call.
    state: State
    calls: int  # in the current window (empty while open or half-open)
    failures: int
    opened_at: float | None
    cooldown_until: float | None
    last_failure_at: float | None
    last_recovery_at: float | None
    probes_in_flight: int


@dataclass(frozen=True)
class Incident:
    """One open -> closed cycle; ``closed_at`` is ``None`` while it is still open."""

    provider: str
    model: str  # provider-qualified, as everywhere in Baton
    opened_at: float
    closed_at: float | None
    duration_s: float  # so far, while still open
    failures: int


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _fields(raw: Mapping[Any, Any]) -> dict[str, str]:
    """An HGETALL reply as text, whether the client decodes responses or not."""
    return {_text(name): _text(value) for name, value in raw.items()}


def _float(fields: Mapping[str, str], name: str) -> float | None:
    value = fields.get(name)
    return None if value is None else float(value)


def _provider(target: str) -> str:
    return target.partition("/")[0]


class CircuitBreaker:
    """Admits and records calls per target; reads states and incidents for the health view."""

    def __init__(self, settings: BreakerSettings, clock: Clock) -> None:
        self.settings = settings
        self._clock = clock

    # --- the hot path (asyncio) -------------------------------------------------------------

    async def allow(self, client: AsyncClient, target: str) -> Permit:
        """Whether a call to ``target`` may go upstream now; one round trip.

        A refused call must cost no upstream time: the caller moves to the next model of
        its chain. Raises :class:`RedisUnavailableError` when Redis does not answer (the
        caller then treats the breaker as closed).
        """
        probe_id = uuid.uuid4().hex
        settings = self.settings
        args: list[float | int | str] = [
            self._clock.time(),
            probe_id,
            settings.half_open_probes,
            settings.probe_lease_s,
        ]
        try:
            allowed, state, probe = await ALLOW.run_async(
                client, [keys.breaker_key(target), keys.breaker_probes_key(target)], args
            )
        except REDIS_DOWN_ERRORS as exc:
            raise RedisUnavailableError("Redis did not answer the circuit breaker") from exc
        is_probe = bool(probe)
        return Permit(
            allowed=bool(allowed),
            state=_state(state),
            probe=is_probe,
            probe_id=probe_id if is_probe else None,
        )

    async def record(
        self, client: AsyncClient, target: str, *, success: bool, permit: Permit
    ) -> State | None:
        """Count the outcome of a call ``permit`` let through; the new state on a transition.

        One round trip, plus one more (a ZADD to the index) on the rare call that moves
        the breaker. Raises :class:`RedisUnavailableError` when the outcome was not
        recorded; a failed index write is only logged, because the transition happened.
        """
        if not permit.allowed:
            raise ValueError("only a call the breaker let through has an outcome to record")
        settings = self.settings
        now = self._clock.time()
        script_keys = [
            keys.breaker_key(target),
            keys.health_key(target),
            keys.breaker_probes_key(target),
            keys.breaker_incidents_key(target),
        ]
        args: list[float | int | str] = [
            now,
            int(success),
            permit.probe_id or "",
            settings.slice_s,
            WINDOW_SLICES,
            settings.min_calls,
            settings.failure_rate,
            settings.cooldown_s,
            settings.cooldown_multiplier,
            settings.max_cooldown_s,
            settings.incident_retention_s,
        ]
        try:
            moved = await RECORD.run_async(client, script_keys, args)
        except REDIS_DOWN_ERRORS as exc:
            raise RedisUnavailableError("Redis did not record the call's outcome") from exc
        if moved is None:
            return None
        await self._index(client, target, now)
        return _state(moved)

    async def _index(self, client: AsyncClient, target: str, now: float) -> None:
        """List ``target`` among recently moved breakers, dropping those past retention."""
        index = keys.breaker_index_key()
        pipe = client.pipeline(transaction=False)
        pipe.zadd(index, {target: now})
        pipe.zremrangebyscore(index, "-inf", f"({now - self.settings.incident_retention_s}")
        try:
            await pipe.execute()
        except REDIS_DOWN_ERRORS as exc:
            logger.warning(
                "breaker moved but the breaker index was not updated",
                extra={"target": target, "error": type(exc).__name__},
            )

    async def open_targets(self, client: AsyncClient) -> set[str]:
        """Targets whose breaker is open and still cooling down: the router leaves them
        out. Two round trips (the index, then each listed breaker's state)."""
        now = self._clock.time()
        since = now - self.settings.incident_retention_s
        try:
            members: list[Any] = await client.zrevrangebyscore(
                keys.breaker_index_key(), "+inf", since
            )
            targets = [_text(member) for member in members]
            if not targets:
                return set()
            pipe = client.pipeline(transaction=False)
            for target in targets:
                pipe.hmget(keys.breaker_key(target), ["state", "cooldown_until"])
            replies: list[Any] = await pipe.execute()
        except REDIS_DOWN_ERRORS as exc:
            raise RedisUnavailableError("Redis did not return the open breakers") from exc
        found: set[str] = set()
        for target, (state, cooldown_until) in zip(targets, replies, strict=True):
            cooling = cooldown_until is None or float(_text(cooldown_until)) > now
            if state is not None and _text(state) == "open" and cooling:
                found.add(target)
        return found

    # --- the health view (sync) -----------------------------------------------------------

    def state(self, client: SyncClient, target: str) -> BreakerStatus:
        """The breaker of ``target`` now: state, window counts, timestamps; one round trip."""
        now = self._clock.time()
        pipe = client.pipeline(transaction=False)
        pipe.hgetall(keys.breaker_key(target))
        pipe.hgetall(keys.health_key(target))
        pipe.zcount(keys.breaker_probes_key(target), f"({now}", "+inf")
        try:
            raw_state, raw_window, probes = pipe.execute()
        except REDIS_DOWN_ERRORS as exc:
            raise RedisUnavailableError("Redis did not return the breaker state") from exc
        fields = _fields(raw_state)
        state = _state(fields.get("state", "closed"))
        cooldown_until = _float(fields, "cooldown_until")
        if state == "open" and cooldown_until is not None and now >= cooldown_until:
            state = "half_open"
        calls, failures = (
            self._window_counts(_fields(raw_window), now) if state == "closed" else (0, 0)
        )
        return BreakerStatus(
            target=target,
            state=state,
            calls=calls,
            failures=failures,
            opened_at=_float(fields, "opened_at"),
            cooldown_until=cooldown_until,
            last_failure_at=_float(fields, "last_failure_at"),
            last_recovery_at=_float(fields, "last_recovery_at"),
            probes_in_flight=int(probes) if state == "half_open" else 0,
        )

    def _window_counts(self, window: Mapping[str, str], now: float) -> tuple[int, int]:
        """Calls and failures in the window, counted as ``breaker_record.lua`` counts them."""
        oldest = math.floor(now / self.settings.slice_s) - WINDOW_SLICES + 1
        counts = {"c": 0, "f": 0}
        for name, value in window.items():
            kind, _, slice_id = name.partition(":")
            if kind in counts and int(slice_id) >= oldest:
                counts[kind] += int(value)
        return counts["c"], counts["f"]

    def open_incident(self, client: SyncClient, target: str) -> Incident | None:
        """The incident in progress on ``target`` (its breaker open or half-open), if any."""
        try:
            fields = _fields(client.hgetall(keys.breaker_key(target)))
        except REDIS_DOWN_ERRORS as exc:
            raise RedisUnavailableError("Redis did not return the breaker state") from exc
        opened_at = _float(fields, "opened_at")
        if fields.get("state", "closed") == "closed" or opened_at is None:
            return None
        return Incident(
            provider=_provider(target),
            model=target,
            opened_at=opened_at,
            closed_at=None,
            duration_s=max(0.0, self._clock.time() - opened_at),
            failures=int(fields.get("failures", "0")),
        )

    def targets(self, client: SyncClient) -> list[str]:
        """Targets whose breaker moved within the retention, most recent first."""
        since = self._clock.time() - self.settings.incident_retention_s
        try:
            members: list[Any] = client.zrevrangebyscore(keys.breaker_index_key(), "+inf", since)
        except REDIS_DOWN_ERRORS as exc:
            raise RedisUnavailableError("Redis did not return the breaker index") from exc
        return [_text(member) for member in members]

    def recent_incidents(
        self, client: SyncClient, target: str | None = None, limit: int = 20
    ) -> list[Incident]:
        """Closed incidents within the retention, latest first: of ``target``, or of every
        target in the index when ``target`` is ``None``. One round trip per call (two
        when reading the index first)."""
        targets = [target] if target is not None else self.targets(client)
        if not targets or limit <= 0:
            return []
        since = self._clock.time() - self.settings.incident_retention_s
        pipe = client.pipeline(transaction=False)
        for name in targets:
            pipe.zrevrangebyscore(
                keys.breaker_incidents_key(name), "+inf", since, start=0, num=limit
            )
        try:
            replies = pipe.execute()
        except REDIS_DOWN_ERRORS as exc:
            raise RedisUnavailableError("Redis did not return the breaker incidents") from exc
        incidents = [
            _incident(name, member)
            for name, members in zip(targets, replies, strict=True)
            for member in members
        ]
        incidents.sort(key=lambda incident: incident.closed_at or 0.0, reverse=True)
        return incidents[:limit]


def _state(value: bytes | str) -> State:
    text = _text(value)
    for state in STATES:
        if text == state:
            return state
    raise ValueError(f"unknown breaker state {text!r}")


def _incident(target: str, member: bytes | str) -> Incident:
    """An incident as ``breaker_record.lua`` stored it (JSON)."""
    data = json.loads(_text(member))
    return Incident(
        provider=_provider(target),
        model=target,
        opened_at=float(data["opened_at"]),
        closed_at=float(data["closed_at"]),
        duration_s=float(data["duration_s"]),
        failures=int(data["failures"]),
    )
