"""Errors of the Redis layer.

::

    KvError
    ├── CrossSlotError         a script was handed keys of different cluster slots (a bug)
    ├── RedisNotConfiguredError  no Redis URL in the settings or their parameter
    └── RedisUnavailableError  Redis did not answer (the caller degrades by its policy)

None of them is a ``BatonError``: none is an answer to a caller. A step that meets
``RedisUnavailableError`` degrades (design: cache and dedup fail open, rate limiting by
configuration); the others are programming or deployment errors.
"""

from __future__ import annotations

from redis import exceptions as redis_errors

# What redis-py raises when the server (or the cluster) cannot answer: translated into
# RedisUnavailableError at the kv boundary. Script and type errors are bugs, not outages,
# and pass through untouched.
REDIS_DOWN_ERRORS: tuple[type[Exception], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ClusterDownError,
    redis_errors.RedisClusterException,  # e.g. "no reachable node" while discovering slots
)


class KvError(Exception):
    """Base of the Redis layer's errors."""


class CrossSlotError(KvError, ValueError):
    """Keys of one script call live in different hash slots.

    A single Redis would run such a call, and the bug would surface only on a cluster in
    production; the script loader raises this on every backend instead.
    """


class RedisNotConfiguredError(KvError):
    """No Redis URL: neither ``REDIS_URL`` nor a parameter holding a redis:// URL."""


class RedisUnavailableError(KvError):
    """Redis refused, timed out or is down. Messages never hold the URL (it may hold a password)."""
