"""Redis fixtures: the shared single Redis, a private three-node cluster, and both as one backend.

- ``redis_url``: the team's real Redis (``REDIS_URL``, default ``127.0.0.1:6379``),
  shared by every test and xdist worker, so tests use unique ids and never flush it.
- ``redis_cluster_url``: a Redis Cluster of three primaries started for the session
  (each xdist worker starts its own) from the ``redis-server`` on PATH.
- ``kv_backend`` (params ``single`` and ``cluster``) and ``kv_async``: clients built by
  ``baton.kv.client`` exactly as production builds them, so every script test runs
  against both topologies.

Without a reachable Redis (or without ``redis-server`` for the cluster) the tests that
need it are skipped with the reason, except under ``CI=true``, where they fail: CI must
never pass by skipping.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pytest
import redis

from baton.config import Settings
from baton.kv.client import build_sync_client, open_async_client
from baton.kv.scripts import AsyncClient, SyncClient
from baton.local.embedded_redis import HOST, EmbeddedRedis

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# Socket timeout of test clients. Production's half second is for a Redis next door; the
# shared test Redis serves parallel suites on a busy machine, and a timed-out write is an
# error (never retried), so tests allow more.
TEST_TIMEOUT_S = 5.0
CLUSTER_NODES = 3
CLUSTER_READY_TIMEOUT_S = 30.0


def _unavailable(reason: str) -> NoReturn:
    """Skip with ``reason``, or fail under CI, where a skipped backend hides a gap."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: this backend is required)")
    pytest.skip(reason)


def _answers(url: str) -> bool:
    try:
        with redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2) as client:
            client.ping()
    except redis.RedisError:
        return False
    return True


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis: ``REDIS_URL``, else the local default, else an embedded one.

    A fresh machine without a Redis server still runs the whole suite (``make test``)
    against the embedded Redis that ``make run`` uses; a ``REDIS_URL`` that does not
    answer is skipped, or fails under CI.
    """
    url = os.environ.get("REDIS_URL")
    if url:
        if not _answers(url):
            _unavailable("no Redis answers at REDIS_URL")
        yield url
        return
    if _answers(DEFAULT_REDIS_URL):
        yield DEFAULT_REDIS_URL
        return
    embedded = EmbeddedRedis(tmp_path_factory.mktemp("embedded-redis"))
    try:
        yield embedded.start()
    finally:
        embedded.stop()


# --- a local Redis Cluster ----------------------------------------------------------------


def _port_pair_free(port: int) -> bool:
    """Whether ``port`` and its cluster-bus port (``port + 10000``) can both be bound."""
    for candidate in (port, port + 10000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((HOST, candidate))
            except OSError:
                return False
    return True


def _cluster_port() -> int:
    # Below 55536 so the bus port stays valid; picked at random so workers rarely race.
    for _ in range(200):
        port = random.randint(20000, 55000)
        if _port_pair_free(port):
            return port
    raise RuntimeError("no free port pair for a cluster node")


@dataclass
class LocalCluster:
    """Three cluster-enabled redis-servers, joined with ``redis-cli --cluster create``."""

    root: Path
    executable: str
    nodes: list[EmbeddedRedis] = field(default_factory=list)

    def start(self) -> str:
        for index in range(CLUSTER_NODES):
            node = EmbeddedRedis(
                self.root / f"node{index}",
                executable=self.executable,
                port=_cluster_port(),
                config={
                    "cluster-enabled": "yes",
                    "cluster-config-file": "nodes.conf",
                    "cluster-node-timeout": "5000",
                    "appendonly": "no",
                },
            )
            node.start()
            self.nodes.append(node)
        addresses = [f"{HOST}:{node.port}" for node in self.nodes]
        replicas = ["--cluster-replicas", "0", "--cluster-yes"]
        created = subprocess.run(
            [self._cli(), "--cluster", "create", *addresses, *replicas],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout[-500:]}")
        self._wait_until_ready()
        return self.nodes[0].url

    def _cli(self) -> str:
        return shutil.which("redis-cli") or str(Path(self.executable).with_name("redis-cli"))

    def _wait_until_ready(self) -> None:
        """Every node reports ``cluster_state:ok`` and knows every other node."""
        deadline = time.monotonic() + CLUSTER_READY_TIMEOUT_S
        pending = list(self.nodes)
        while pending:
            with redis.Redis.from_url(pending[0].url, decode_responses=True) as client:
                info = client.execute_command("CLUSTER INFO")
            if info.get("cluster_state") == "ok" and info.get("cluster_known_nodes") == str(
                CLUSTER_NODES
            ):
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster not ready after {CLUSTER_READY_TIMEOUT_S} s: {info}")
            time.sleep(0.1)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A three-primary Redis Cluster for this session (one per xdist worker)."""
    executable = shutil.which("redis-server")
    if executable is None:
        _unavailable("redis-server is not on PATH: cannot start a local Redis Cluster")
    cluster = LocalCluster(tmp_path_factory.mktemp("redis-cluster"), executable)
    try:
        url = cluster.start()
    except Exception as exc:
        cluster.stop()
        pytest.fail(f"could not start the local Redis Cluster: {exc}")
    yield url
    cluster.stop()


# --- one fixture, both topologies ------------------------------------------------------------


@dataclass(frozen=True)
class KvBackend:
    """One Redis topology, with clients built as production builds them."""

    name: str
    settings: Settings
    sync: SyncClient

    @property
    def cluster(self) -> bool:
        return self.name == "cluster"

    async def async_client(self) -> AsyncClient:
        """A new asyncio client (close it with ``await client.aclose()``)."""
        return await open_async_client(self.settings, timeout_s=TEST_TIMEOUT_S)


@contextmanager
def open_backend(name: str, url: str) -> Iterator[KvBackend]:
    """A :class:`KvBackend` on ``url``; ``name`` ``cluster`` speaks the cluster protocol."""
    settings = Settings(redis_url=url, redis_cluster=name == "cluster")
    client = build_sync_client(settings, timeout_s=TEST_TIMEOUT_S)
    try:
        yield KvBackend(name=name, settings=settings, sync=client)
    finally:
        client.close()


@pytest.fixture(
    params=[
        "single",
        pytest.param("cluster", marks=pytest.mark.cluster),
    ]
)
def kv_backend(request: pytest.FixtureRequest) -> Iterator[KvBackend]:
    """The shared single Redis, then the local cluster: every user runs on both."""
    url = request.getfixturevalue(
        "redis_cluster_url" if request.param == "cluster" else "redis_url"
    )
    with open_backend(request.param, url) as backend:
        yield backend


@pytest.fixture
async def kv_async(kv_backend: KvBackend, anyio_backend: str) -> AsyncIterator[AsyncClient]:
    """An asyncio client on ``kv_backend``, closed in the test's own event loop."""
    client = await kv_backend.async_client()
    yield client
    await client.aclose()
