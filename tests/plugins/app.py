"""The OpenAI endpoint in-process (httpx's ASGI transport), on a fresh runtime with an
embedded store in a temporary folder, the test Redis, and a provisioned key."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from baton.auth import create_key
from baton.config import get_settings
from baton.kv.client import reset_clients
from baton.runtime import Runtime, build_runtime, set_runtime
from baton.store.base import KeyOverrides


@dataclass
class AppClient:
    http: httpx.AsyncClient
    runtime: Runtime
    key: str
    user: str

    async def chat(
        self, body: dict[str, Any], path: str = "/v1/chat/completions"
    ) -> httpx.Response:
        return await self.http.post(
            path, json=body, headers={"authorization": f"Bearer {self.key}"}
        )


AppFactory = Callable[..., Any]


@pytest.fixture
def make_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str) -> AppFactory:
    """``async with make_app(env={...}, overrides=KeyOverrides(...)) as app: ...``"""

    @asynccontextmanager
    async def factory(
        env: dict[str, str] | None = None, overrides: KeyOverrides | None = None
    ) -> AsyncIterator[AppClient]:
        from baton.api.openai_app import create_app

        monkeypatch.setenv("BATON_DATA_DIR", str(tmp_path))
        monkeypatch.setenv("BATON_STORE", "embedded")
        monkeypatch.setenv("REDIS_URL", redis_url)
        for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
            monkeypatch.delenv(name, raising=False)
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        reset_clients()
        runtime = build_runtime()
        set_runtime(runtime)
        user = f"u{uuid.uuid4().hex[:12]}"
        key, _ = create_key(runtime.store, user, "master", overrides)
        transport = httpx.ASGITransport(app=create_app())
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://baton") as http:
                yield AppClient(http=http, runtime=runtime, key=key, user=user)
        finally:
            await runtime.registry.aclose()
            set_runtime(None)
            get_settings.cache_clear()
            reset_clients()

    return factory
