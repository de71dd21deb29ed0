"""The request path in-process: each stage's contract, as a caller sees it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from baton.kv.client import get_async_client
from baton.kv.usage_counters import read_usage
from baton.store.base import KeyOverrides
from tests.plugins.app import AppFactory
from tests.spec import assert_valid

pytestmark = pytest.mark.anyio

USER = [{"role": "user", "content": "What is Baton?"}]


def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert_valid("ErrorResponse", body)
    return dict(body["error"])


async def test_unsupported_fields_are_dropped_and_named(make_app: AppFactory) -> None:
    async with make_app() as app:
        response = await app.chat(
            {
                "model": "simulated/echo",
                "messages": USER,
                "logit_bias": {"42": 1},
                "presence_penalty": 1,
            }
        )
    assert response.status_code == 200, response.text
    assert response.headers["x-baton-dropped-params"] == "logit_bias,presence_penalty"


async def test_unsupported_fields_can_be_rejected_instead(make_app: AppFactory) -> None:
    async with make_app(env={"BATON_DROP_UNSUPPORTED_PARAMS": "false"}) as app:
        response = await app.chat(
            {"model": "simulated/echo", "messages": USER, "logit_bias": {"42": 1}}
        )
    error = error_of(response, 400)
    assert error["code"] == "unsupported_parameter" and error["param"] == "logit_bias"


async def test_a_key_limited_to_some_models_gets_403_for_others(make_app: AppFactory) -> None:
    async with make_app(overrides=KeyOverrides(allowed_models=["openai/gpt-4.1"])) as app:
        response = await app.chat({"model": "simulated/echo", "messages": USER})
    assert error_of(response, 403)["param"] == "model"


async def test_usage_is_recorded_in_redis(make_app: AppFactory) -> None:
    async with make_app() as app:
        response = await app.chat({"model": "simulated/echo", "messages": USER})
        assert response.status_code == 200
        usage = response.json()["usage"]
        report = await read_usage(
            await get_async_client(), app.user, "day", datetime.now(UTC).date()
        )
    assert report.totals.requests == 1
    assert report.totals.prompt_tokens == usage["prompt_tokens"]
    assert report.totals.completion_tokens == usage["completion_tokens"]
    assert report.by_model["simulated/echo"].requests == 1


async def test_redis_down_sends_usage_to_the_store_and_says_degraded(make_app: AppFactory) -> None:
    async with make_app(env={"REDIS_URL": "redis://127.0.0.1:1/0"}) as app:
        response = await app.chat({"model": "simulated/echo", "messages": USER})
        assert response.status_code == 200, response.text
        assert "usage" in response.headers["x-baton-degraded"].split(",")
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        row = app.runtime.store.get_row(f"tenant#{app.user}", f"d#{day}")
    assert row is not None and row["requests"] == 1
    assert row["prompt_tokens"] == response.json()["usage"]["prompt_tokens"]


async def test_upstream_failure_is_openai_shaped_and_still_counted(make_app: AppFactory) -> None:
    async with make_app() as app:
        response = await app.chat(
            {
                "model": "simulated/echo",
                "messages": [{"role": "user", "content": "[simulate:503] hi"}],
            }
        )
        report = await read_usage(
            await get_async_client(), app.user, "day", datetime.now(UTC).date()
        )
    assert error_of(response, 503)["type"] == "upstream_error"
    assert report.totals.requests == 1 and report.totals.errors == 1


async def test_deadline_ends_in_a_504_not_a_hang(make_app: AppFactory) -> None:
    async with make_app() as app:
        response = await app.chat(
            {
                "model": "simulated/echo",
                "messages": [{"role": "user", "content": "[simulate:slow=5000] hi"}],
                "baton": {"timeout_s": 0.2},
            }
        )
    assert error_of(response, 504)["code"] == "deadline_exceeded"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"max_tokens": 10_000_000}, "max_tokens"),
        ({"n": 2}, "n"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0]"),
    ],
)
async def test_bad_requests_get_400_naming_the_field(
    make_app: AppFactory, extra: dict[str, Any], param: str
) -> None:
    async with make_app() as app:
        response = await app.chat({"model": "simulated/echo", "messages": USER, **extra})
    error = error_of(response, 400)
    assert error["param"] == param, error


async def test_too_many_messages_is_400(make_app: AppFactory) -> None:
    async with make_app(env={"BATON_MAX_MESSAGES": "3"}) as app:
        response = await app.chat({"model": "simulated/echo", "messages": USER * 4})
    assert error_of(response, 400)["param"] == "messages"


async def test_auto_uses_the_simulated_model_when_no_provider_is_configured(
    make_app: AppFactory,
) -> None:
    async with make_app() as app:
        response = await app.chat({"model": "auto", "messages": USER})
    assert response.status_code == 200
    assert response.headers["x-baton-model"] == "simulated/echo"


async def test_unconfigured_provider_is_refused_when_not_simulating(make_app: AppFactory) -> None:
    async with make_app(env={"BATON_SIMULATE_MISSING_PROVIDERS": "false"}) as app:
        response = await app.chat({"model": "openai/gpt-4.1", "messages": USER})
        models = await app.http.get("/v1/models", headers={"authorization": f"Bearer {app.key}"})
    assert error_of(response, 404)["code"] == "provider_not_configured"
    ids = [m["id"] for m in models.json()["data"]]
    assert "simulated/echo" in ids and "openai/gpt-4.1" not in ids


async def test_cloudfront_origin_header_is_required_on_platform_requests(
    make_app: AppFactory,
) -> None:
    env = {"BATON_ORIGIN_HEADER": "x-baton-origin-verify", "BATON_ORIGIN_SECRET": "s3cret"}
    body = {"model": "simulated/echo", "messages": USER}
    async with make_app(env=env) as app:
        auth = {"authorization": f"Bearer {app.key}"}
        platform = {**auth, "x-amzn-request-context": "{}"}
        direct = await app.http.post("/v1/chat/completions", json=body, headers=platform)
        wrong = await app.http.post(
            "/v1/chat/completions", json=body, headers={**platform, "x-baton-origin-verify": "no"}
        )
        via_cloudfront = await app.http.post(
            "/v1/chat/completions",
            json=body,
            headers={**platform, "x-baton-origin-verify": "s3cret"},
        )
        in_sandbox = await app.http.get("/openapi.json")
    assert error_of(direct, 403)["code"] == "direct_access_denied"
    assert error_of(wrong, 403)["code"] == "direct_access_denied"
    assert via_cloudfront.status_code == 200
    assert in_sandbox.status_code == 200


async def test_after_restore_hook_answers_only_inside_the_sandbox(make_app: AppFactory) -> None:
    async with make_app() as app:
        hook = await app.http.post("/_baton/after-restore")
        from_outside = await app.http.post(
            "/_baton/after-restore", headers={"x-amzn-request-context": "{}"}
        )
        still_serving = await app.chat({"model": "simulated/echo", "messages": USER})
    assert hook.status_code == 200 and hook.json() == {"status": "restored"}
    assert error_of(from_outside, 404)["code"] == "unknown_route"
    assert still_serving.status_code == 200
