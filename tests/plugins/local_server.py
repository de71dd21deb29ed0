"""A real ``baton serve`` process for end-to-end tests: its own data folder, the test
Redis, a provisioned dev key, a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

DEV_KEY = "bt_e2e_dev_key_0123456789"


@dataclass(frozen=True)
class LocalServer:
    url: str
    key: str
    data_dir: Path

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data_dir: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``baton serve`` and wait until it answers ``/v2/health``."""
    port = free_port()
    full_env = {**os.environ, "PORT": str(port), "BATON_DATA_DIR": str(data_dir), **env}
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        if name not in env:
            full_env.pop(name, None)
    log = (data_dir / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "baton.cli", "serve"], env=full_env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError((data_dir / "server.log").read_text())
        try:
            if httpx.get(f"{url}/v2/health", timeout=1).status_code < 500:
                return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("baton serve did not answer within 30 s")


@pytest.fixture(scope="session")
def local_server(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[LocalServer]:
    data_dir = tmp_path_factory.mktemp("baton-data")
    process, url = start_server(
        data_dir, {"REDIS_URL": redis_url, "BATON_DEV_API_KEY": DEV_KEY, "BATON_DEV_USER": "e2e"}
    )
    try:
        yield LocalServer(url=url, key=DEV_KEY, data_dir=data_dir)
    finally:
        process.terminate()
        process.wait(timeout=10)
