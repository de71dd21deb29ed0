"""Active probes: one minimal request per live provider, fed to the health windows."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from baton.ai.probes import probe_targets, run_probes
from baton.kv import health
from baton.kv.client import get_sync_client
from tests.fakes.server import Fault
from tests.plugins.app import AppFactory

pytestmark = [pytest.mark.anyio, pytest.mark.xdist_group("probes")]


async def test_each_live_provider_is_probed_on_its_cheapest_model(
    make_app: AppFactory, openai_fake: Any
) -> None:
    env = {"OPENAI_API_KEY": f"sk-{uuid.uuid4().hex}", "OPENAI_BASE_URL": f"{openai_fake.url}/v1"}
    async with make_app(env=env) as app:
        targets = probe_targets(app.runtime)
        assert [m.provider for m in targets] == ["openai"]  # the only live provider
        target = targets[0].id
        before = health.window_stats(get_sync_client(), target, clock=app.runtime.clock)
        ok = await run_probes(app.runtime)
        openai_fake.inject(Fault(status=500))
        failed = await run_probes(app.runtime)
        after = health.window_stats(get_sync_client(), target, clock=app.runtime.clock)
    assert target == "openai/gpt-4o-mini"  # the cheapest OpenAI model in the catalog
    assert ok[0].ok and ok[0].recorded and ok[0].error is None
    assert not failed[0].ok and failed[0].error == "upstream_error"
    assert after.calls - before.calls == 2
    assert after.errors - before.errors == 1
    assert [r.path for r in openai_fake.requests] == ["/v1/chat/completions"] * 2


async def test_no_live_provider_means_no_probe(make_app: AppFactory) -> None:
    async with make_app() as app:
        assert probe_targets(app.runtime) == []
        assert await run_probes(app.runtime) == []
