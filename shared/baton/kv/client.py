"""Redis clients built from the settings: one sync and one asyncio client per container.

Where the URL comes from, first match wins:

1. ``REDIS_URL`` (``redis://`` or ``rediss://``; TLS for Upstash and ElastiCache);
2. ``BATON_REDIS_URL_PARAMETER``, resolved with Powertools Parameters: a name starting
   with ``/`` is an SSM parameter (decrypted), anything else (a name or an
   ``arn:aws:secretsmanager:`` ARN) is a Secrets Manager secret holding the URL.

``BATON_REDIS_CLUSTER`` selects ``RedisCluster`` (ElastiCache Serverless runs in cluster
mode). Timeouts are short and retries few, so a dead Redis costs a request a fraction of
a second and the step degrades by its policy instead of hanging: redis-py's defaults
(no socket timeout, ten retries) would hold a Lambda for seconds per call.

Clients are cached: the sync client per container, the asyncio client per event loop,
because an asyncio connection belongs to the loop that opened it and a handler that calls
``asyncio.run`` per invocation gets a new loop every time. :func:`reset_clients` drops
them all; it runs after a SnapStart restore (connections in the snapshot are dead) and in
tests.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any
from weakref import WeakKeyDictionary

from redis import BlockingConnectionPool, Redis, RedisCluster
from redis import asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from baton.config import Settings, get_settings
from baton.kv.exceptions import REDIS_DOWN_ERRORS, RedisNotConfiguredError, RedisUnavailableError
from baton.kv.scripts import AsyncClient, SyncClient

# Socket connect and read timeout, in seconds. Intra-AZ ElastiCache answers in about a
# millisecond and Upstash over TLS in tens; half a second is ample for both and short
# enough to degrade fast. To become the setting BATON_REDIS_SOCKET_TIMEOUT_S.
SOCKET_TIMEOUT_S = 0.5
# One retry rides over a connection closed while a Lambda was frozen; more only delay
# the degraded answer.
RETRIES = 1
_BACKOFF = ExponentialWithJitterBackoff(base=0.01, cap=0.1)
# Connections per pool (per node on a cluster). On a single Redis the pool is a blocking
# one: a burst of concurrent calls waits up to SOCKET_TIMEOUT_S for a free connection
# instead of failing at once, which redis-py's default pool does at its limit. The
# cluster client has no blocking pool; a burst past the limit fails like an outage.
MAX_CONNECTIONS = 100

_URL_SCHEMES = ("redis://", "rediss://", "unix://")


def resolve_redis_url(settings: Settings) -> str:
    """The Redis URL from the settings or from the parameter they name.

    Raises :class:`RedisNotConfiguredError` when there is none. The URL may hold a
    password, so it appears in no message.
    """
    if settings.redis_url:
        return settings.redis_url
    name = settings.redis_url_parameter
    if not name:
        raise RedisNotConfiguredError("set REDIS_URL or BATON_REDIS_URL_PARAMETER")
    # Imported here: Powertools Parameters pulls in boto3, which only this path needs.
    from aws_lambda_powertools.utilities import parameters

    value = (
        parameters.get_parameter(name, decrypt=True)
        if name.startswith("/")
        else parameters.get_secret(name)
    )
    url = value.strip() if isinstance(value, str) else ""
    if not url.startswith(_URL_SCHEMES):
        raise RedisNotConfiguredError(f"parameter {name!r} does not hold a redis:// URL")
    return url


def build_sync_client(settings: Settings) -> SyncClient:
    """A new sync client for the configured Redis (single or cluster).

    A cluster client discovers the slot map here; :class:`RedisUnavailableError` if it
    cannot.
    """
    url = resolve_redis_url(settings)
    options = _options(Retry(_BACKOFF, RETRIES))
    if settings.redis_cluster:
        try:
            return RedisCluster.from_url(url, max_connections=MAX_CONNECTIONS, **options)
        except REDIS_DOWN_ERRORS as exc:
            raise RedisUnavailableError("Redis Cluster did not answer") from exc
    pool = BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=SOCKET_TIMEOUT_S, **options
    )
    return Redis.from_pool(pool)


async def open_async_client(settings: Settings) -> AsyncClient:
    """A new asyncio client for the configured Redis, ready for concurrent use.

    A single-Redis client connects lazily. A cluster client discovers the slot map here,
    before any command: redis-py's asyncio cluster, first used by concurrent tasks,
    initialises once per task and closes connections the others are using (see
    redis/redis-py#2231 and #3565 for that family of races).
    """
    url = resolve_redis_url(settings)
    options = _options(AsyncRetry(_BACKOFF, RETRIES))
    if not settings.redis_cluster:
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=MAX_CONNECTIONS, timeout=SOCKET_TIMEOUT_S, **options
        )
        return aioredis.Redis.from_pool(pool)
    cluster = aioredis.RedisCluster.from_url(url, max_connections=MAX_CONNECTIONS, **options)
    try:
        return await cluster.initialize()
    except REDIS_DOWN_ERRORS as exc:
        await cluster.aclose()
        raise RedisUnavailableError("Redis Cluster did not answer") from exc


def _options(retry: Retry | AsyncRetry) -> dict[str, Any]:
    return {
        "socket_timeout": SOCKET_TIMEOUT_S,
        "socket_connect_timeout": SOCKET_TIMEOUT_S,
        "retry": retry,
    }


class _LoopClient:
    """One event loop's client, opened once under that loop's lock."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.client: AsyncClient | None = None


class _Clients:
    """The container's cached clients; a class so the cache has one lock and one reset."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sync: SyncClient | None = None
        self.by_loop: WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClient] = (
            WeakKeyDictionary()
        )


_clients = _Clients()


def get_sync_client() -> SyncClient:
    """The container's sync client, built from :func:`get_settings` on first use."""
    with _clients.lock:
        if _clients.sync is None:
            _clients.sync = build_sync_client(get_settings())
        return _clients.sync


async def get_async_client() -> AsyncClient:
    """The asyncio client of the running event loop, opened on first use in that loop.

    A failed opening is not cached: the next call tries again.
    """
    loop = asyncio.get_running_loop()
    with _clients.lock:
        entry = _clients.by_loop.setdefault(loop, _LoopClient())
    async with entry.lock:
        if entry.client is None:
            entry.client = await open_async_client(get_settings())
        return entry.client


def reset_clients() -> None:
    """Forget every cached client, so the next call connects afresh.

    The sync client's pool is closed; asyncio clients are dropped with their loops'
    entries (closing them would need their loop, which may be gone).
    """
    with _clients.lock:
        stale, _clients.sync = _clients.sync, None
        _clients.by_loop.clear()
    if stale is not None:
        stale.close()


async def ping(client: AsyncClient) -> float:
    """Round-trip time of a PING in milliseconds; :class:`RedisUnavailableError` if down."""
    started = time.perf_counter()
    try:
        await client.ping()
    except REDIS_DOWN_ERRORS as exc:
        raise RedisUnavailableError("Redis did not answer PING") from exc
    return (time.perf_counter() - started) * 1000.0
