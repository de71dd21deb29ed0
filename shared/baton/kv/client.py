"""Redis clients from the settings: one sync client per container, one asyncio client per loop.

Where the URL comes from, first match wins:

1. ``REDIS_URL`` (``redis://`` or ``rediss://``; TLS for Upstash and ElastiCache);
2. ``BATON_REDIS_URL_PARAMETER``, resolved with Powertools Parameters: a name starting
   with ``/`` is an SSM parameter (decrypted), anything else (a name or an
   ``arn:aws:secretsmanager:`` ARN) is a Secrets Manager secret holding the URL.

``BATON_REDIS_CLUSTER`` selects ``RedisCluster`` (ElastiCache Serverless runs in cluster
mode). Timeouts are short, so a dead Redis costs a request a fraction of a second and the
step degrades by its policy instead of hanging (redis-py's defaults: no socket timeout,
ten retries).

Retries are deliberately narrow, because most of Baton's Redis calls are not idempotent
(a usage increment, a rate-limit debit): a command that timed out may well have run, and
running it again would count twice. So a single-Redis client retries once, and only on a
connection error (a refused connect, a connection closed while a Lambda was frozen);
never on a timeout. The cluster client retries neither: redis-py's cluster layer retries
timeouts whatever the retry's error list says, so its retry count is zero (MOVED and ASK
redirects are followed regardless; they are not retries).

Clients are cached: the sync client per container, the asyncio client per event loop,
because an asyncio connection belongs to the loop that opened it and a handler that calls
``asyncio.run`` per invocation gets a new loop every time (such a handler ends its
coroutine with :func:`close_async_client`). :func:`reset_clients` drops them all; it runs
after a SnapStart restore (connections in the snapshot are dead) and in tests.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from redis import BlockingConnectionPool, Redis, RedisCluster
from redis import asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from baton.config import Settings, get_settings
from baton.kv.exceptions import REDIS_DOWN_ERRORS, RedisNotConfiguredError, RedisUnavailableError
from baton.kv.scripts import AsyncClient, SyncClient

# The socket timeout is BATON_REDIS_SOCKET_TIMEOUT_S (0.5 s): intra-AZ ElastiCache answers
# in about a millisecond and Upstash over TLS in tens; half a second is ample for both
# and short enough to degrade fast.
# One retry, on connection errors only (see above).
RETRIES = 1
_BACKOFF = ExponentialWithJitterBackoff(base=0.01, cap=0.1)
# Connections per pool (per node on a cluster) are BATON_REDIS_MAX_CONNECTIONS. On a single
# Redis the pool is a blocking one: a burst of concurrent calls waits up to the socket
# timeout for a free connection instead of failing at once, which redis-py's default
# pool does at its limit. The cluster client has no blocking pool; a burst past the
# limit fails like an outage.

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


def build_sync_client(settings: Settings, *, timeout_s: float | None = None) -> SyncClient:
    """A new sync client for the configured Redis (single or cluster).

    ``timeout_s`` overrides the socket timeout (tests on a loaded machine want more). A
    cluster client discovers the slot map here; :class:`RedisUnavailableError` if it
    cannot.
    """
    url = resolve_redis_url(settings)
    timeout = timeout_s or settings.redis_socket_timeout_s
    if settings.redis_cluster:
        try:
            return RedisCluster.from_url(
                url,
                retry=Retry(_BACKOFF, 0),
                **_options(timeout, settings.redis_max_connections, cluster=True),
            )
        except REDIS_DOWN_ERRORS as exc:
            raise RedisUnavailableError("Redis Cluster did not answer") from exc
    retry = Retry(_BACKOFF, RETRIES, supported_errors=(redis_errors.ConnectionError,))
    pool = BlockingConnectionPool.from_url(
        url, retry=retry, **_options(timeout, settings.redis_max_connections, cluster=False)
    )
    return Redis.from_pool(pool)


async def open_async_client(settings: Settings, *, timeout_s: float | None = None) -> AsyncClient:
    """A new asyncio client for the configured Redis, ready for concurrent use.

    A single-Redis client connects lazily. A cluster client discovers the slot map here,
    before any command: redis-py's asyncio cluster, first used by concurrent tasks,
    initialises once per task and closes connections the others are using (see
    redis/redis-py#2231 and #3565 for that family of races).
    """
    url = resolve_redis_url(settings)
    timeout = timeout_s or settings.redis_socket_timeout_s
    if not settings.redis_cluster:
        retry = AsyncRetry(_BACKOFF, RETRIES, supported_errors=(redis_errors.ConnectionError,))
        pool = aioredis.BlockingConnectionPool.from_url(
            url, retry=retry, **_options(timeout, settings.redis_max_connections, cluster=False)
        )
        return aioredis.Redis.from_pool(pool)
    cluster = aioredis.RedisCluster.from_url(
        url,
        retry=AsyncRetry(_BACKOFF, 0),
        **_options(timeout, settings.redis_max_connections, cluster=True),
    )
    try:
        return await cluster.initialize()
    except REDIS_DOWN_ERRORS as exc:
        await cluster.aclose()
        raise RedisUnavailableError("Redis Cluster did not answer") from exc


def _options(timeout: float, max_connections: int, *, cluster: bool) -> dict[str, Any]:
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "max_connections": max_connections,
    }
    if not cluster:
        options["timeout"] = timeout  # how long to wait for a free pooled connection
    return options


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
        # Not a WeakKeyDictionary: a client's connections refer to their loop, so a weak
        # key would never die; entries of closed loops are pruned instead.
        self.by_loop: dict[asyncio.AbstractEventLoop, _LoopClient] = {}


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
        entry = _clients.by_loop.get(loop)
        if entry is None:
            for closed in [old for old in _clients.by_loop if old.is_closed()]:
                del _clients.by_loop[closed]
            entry = _clients.by_loop[loop] = _LoopClient()
    async with entry.lock:
        if entry.client is None:
            entry.client = await open_async_client(get_settings())
        return entry.client


async def close_async_client() -> None:
    """Close and forget the running loop's client.

    For code that runs a short-lived loop (``asyncio.run`` per Lambda invocation): a
    client still open when its loop ends can never be closed, and its connections raise
    "Event loop is closed" when they are garbage-collected inside a later loop.
    """
    loop = asyncio.get_running_loop()
    with _clients.lock:
        entry = _clients.by_loop.pop(loop, None)
    if entry is not None and entry.client is not None:
        await entry.client.aclose()


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
