"""THE Redis key schema: every key Baton writes is built here, and only here.

Redis may be a cluster (ElastiCache Serverless runs in cluster mode), where one script
or MULTI may touch only keys of one hash slot. Every key is therefore
``baton:`` + a ``{hash-tag}`` + the rest, and the keys one script touches together share
the tag: a tenant's usage counters, rate-limit state, budget, cache entries and dedup
markers all carry ``{t:<tenant>}``; a model's breaker state and health window carry
``{cb:<provider/model>}``.

=============================================  ======  =====  ==============================
Key                                            Type    TTL    Holds / written by
=============================================  ======  =====  ==============================
``baton:{t:<tenant>}:usage:d:<YYYY-MM-DD>``    hash    none   a day's counters, per-model
                                                              counters and latency buckets
                                                              (``record_usage.lua``)
``baton:{t:<tenant>}:usage:m:<YYYY-MM>``       hash    none   the same for a month
``baton:{t:<tenant>}:usage:dirty``             set     none   periods (``d:<day>``,
                                                              ``m:<month>``) changed since the
                                                              aggregator last read them
``baton:{usage-index}:d:<YYYY-MM-DD>``         set     none   tenants with usage on that day:
                                                              how the aggregator finds them
``baton:{t:<tenant>}:rl:<limit>``              any     none   rate-limit state of one limit
``baton:{t:<tenant>}:rl:<limit>:m:<model>``    any     none   the same, per model
``baton:{t:<tenant>}:budget:<YYYY-MM>``        any     none   budget spend / reservations
``baton:{t:<tenant>}:cache:<fingerprint>``     any     yes    a cached answer (tenant scope)
``baton:{cache:<fingerprint>}``                any     yes    a cached answer (shared scope)
``baton:{t:<tenant>}:dedup:<fingerprint>``     any     yes    an in-flight marker (leader)
``baton:{cb:<provider/model>}:state``          hash    none   circuit-breaker state
``baton:{cb:<provider/model>}:health``         hash    none   the breaker's sliding window of
                                                              calls and failures per slice
``baton:{cb:<provider/model>}:probes``         zset    none   half-open probe leases
``baton:{cb:<provider/model>}:incidents``      zset    none   closed incidents by close time,
                                                              trimmed to the retention
``baton:{cb-index}:targets``                   zset    none   targets by last breaker
                                                              transition: how the health
                                                              endpoint finds incidents
``baton:{cb:<provider/model>}:health:m:<min>`` hash    ~1 h   one minute of live-traffic
                                                              calls, errors, latency buckets
=============================================  ======  =====  ==============================

Only cache entries, in-flight markers and health minutes (monitoring data, which may be
lost) carry a TTL, so the documented eviction policy ``volatile-lru`` can evict nothing
else (design decision 2). Keys without a TTL must be bounded by their writer (a fixed set
of limits per tenant, a breaker window trimmed by time) or deleted by the aggregator (old
usage periods).

Ids are escaped before they enter a key: tenant and model ids may contain ``:`` (our
separator), ``{`` or ``}`` (a ``}`` inside a tag would end it early and move the key to
another slot). Percent-encoding (``urllib.parse.quote``, keeping ``/`` so model ids stay
readable) makes every id safe and keeps distinct ids distinct.
"""

from __future__ import annotations

from datetime import date
from typing import Literal
from urllib.parse import quote, unquote

PREFIX = "baton"

Period = Literal["day", "month"]

_PERIOD_CODES: dict[Period, str] = {"day": "d", "month": "m"}


def escape(value: str) -> str:
    """An id made safe for a key: no ``:``, ``{``, ``}``, ``%`` or whitespace left raw.

    Raises ``ValueError`` on an empty id: it would silently merge unrelated state.
    """
    if not value:
        raise ValueError("an empty id cannot be part of a Redis key")
    return quote(value, safe="/")


def unescape(value: str) -> str:
    """The id that :func:`escape` turned into ``value``."""
    return unquote(value)


def _key(tag: str, *parts: str) -> str:
    return ":".join((PREFIX, tag, *parts))


# --- hash tags ----------------------------------------------------------------------------


def tenant_tag(tenant: str) -> str:
    """``{t:<tenant>}``: the slot of everything one tenant's scripts touch together."""
    return "{t:" + escape(tenant) + "}"


def breaker_tag(target: str) -> str:
    """``{cb:<provider/model>}``: a breaker's state and its health window share a slot."""
    return "{cb:" + escape(target) + "}"


# --- periods ------------------------------------------------------------------------------


def period_id(period: Period, day: date) -> str:
    """``d:2026-11-26`` or ``m:2026-11``: the period of ``day`` as used in keys and markers."""
    stamp = day.isoformat() if period == "day" else f"{day:%Y-%m}"
    return f"{_PERIOD_CODES[period]}:{stamp}"


# --- usage --------------------------------------------------------------------------------


def usage_key(tenant: str, period: Period, day: date) -> str:
    """The counters hash of a tenant for the day or the month containing ``day``."""
    return _key(tenant_tag(tenant), "usage", period_id(period, day))


def usage_dirty_key(tenant: str) -> str:
    """The set of a tenant's periods written since the aggregator last claimed them."""
    return _key(tenant_tag(tenant), "usage", "dirty")


def usage_index_key(day: date) -> str:
    """The set of tenants with usage on ``day``.

    It cannot share the tenant's slot, so it is written beside the counter script in the
    same round trip; the aggregator keeps it until the day is final, so a tenant is never
    lost whatever the order in which the two writes land.
    """
    return _key("{usage-index}", period_id("day", day))


# --- admission ----------------------------------------------------------------------------


def rate_limit_key(tenant: str, limit: str, *, model: str | None = None) -> str:
    """State of one named limit (``requests``, ``tokens`` ...), tenant-wide or per model."""
    parts = ["rl", escape(limit)]
    if model is not None:
        parts += ["m", escape(model)]
    return _key(tenant_tag(tenant), *parts)


def budget_key(tenant: str, day: date) -> str:
    """A tenant's budget spend for the month containing ``day``."""
    return _key(tenant_tag(tenant), "budget", period_id("month", day))


# --- cache and deduplication ----------------------------------------------------------------


def cache_key(fingerprint: str, *, tenant: str | None) -> str:
    """A cached answer: under the tenant's tag, or tagged by itself when shared.

    A shared entry gets its own tag so shared entries spread over every slot instead of
    piling onto one.
    """
    if tenant is None:
        return _key("{cache:" + escape(fingerprint) + "}")
    return _key(tenant_tag(tenant), "cache", escape(fingerprint))


def dedup_key(tenant: str, fingerprint: str) -> str:
    """The in-flight marker of the one request answering all identical ones."""
    return _key(tenant_tag(tenant), "dedup", escape(fingerprint))


# --- provider health ----------------------------------------------------------------------


def breaker_key(target: str) -> str:
    """Circuit-breaker state of a provider-qualified model (``openai/gpt-5.4-mini``)."""
    return _key(breaker_tag(target), "state")


def health_key(target: str) -> str:
    """Recent outcomes of a provider-qualified model, read by its breaker."""
    return _key(breaker_tag(target), "health")


def breaker_probes_key(target: str) -> str:
    """The leases of a half-open breaker's probes in flight (probe id -> lease end)."""
    return _key(breaker_tag(target), "probes")


def breaker_incidents_key(target: str) -> str:
    """A model's closed breaker incidents, scored by the time each one closed."""
    return _key(breaker_tag(target), "incidents")


def breaker_index_key() -> str:
    """Targets whose breaker changed state recently, scored by the latest change.

    The health endpoint reads it instead of KEYS/SCAN (which a cluster cannot serve);
    it lives in a slot of its own, written beside each transition's script.
    """
    return _key("{cb-index}", "targets")


def health_minute_key(target: str, minute: int) -> str:
    """One minute of a model's live-traffic health (``minute``: epoch seconds // 60).

    Monitoring data, so it carries a TTL and may be evicted; it shares the breaker's slot.
    """
    return _key(breaker_tag(target), "health", "m", str(minute))
