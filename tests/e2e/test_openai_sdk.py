"""End to end: ``baton serve`` in its own process, driven by the official OpenAI SDK
and plain HTTP, answers valid OpenAI shapes and the right 4xx for bad requests."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.plugins.local_server import LocalServer
from tests.spec import assert_valid

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hello to Baton"},
]


def client(server: LocalServer, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openai_base_url, api_key=key or server.key, max_retries=0)


def post(
    server: LocalServer, path: str, body: Any, key: str | None = "default", **kw: Any
) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["authorization"] = f"Bearer {server.key if key == 'default' else key}"
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(f"{server.url}{path}", content=content, headers=headers, timeout=10, **kw)


def assert_openai_error(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert_valid("ErrorResponse", body)
    assert set(body["error"]) == {"message", "type", "param", "code"}
    if code is not None:
        assert body["error"]["code"] == code
    assert response.headers["x-request-id"]
    assert "Traceback" not in response.text
    return body


def test_sdk_completion_is_a_valid_openai_response(local_server: LocalServer) -> None:
    raw = client(local_server).chat.completions.with_raw_response.create(
        model="simulated/echo",
        messages=MESSAGES,  # type: ignore[arg-type]
    )
    assert_valid("CreateChatCompletionResponse", json.loads(raw.text))
    completion = raw.parse()
    assert completion.choices[0].message.content is not None
    assert "Say hello to Baton" in completion.choices[0].message.content
    assert "simulated" in completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.prompt_tokens > 0
    assert raw.headers["x-baton-provider"] == "simulated"
    assert raw.headers["x-baton-model"] == "simulated/echo"
    assert raw.headers["x-request-id"].startswith("req_")


def test_provider_without_key_is_simulated_locally(local_server: LocalServer) -> None:
    raw = client(local_server).chat.completions.with_raw_response.create(
        model="anthropic/claude-haiku-4-5",
        messages=MESSAGES,  # type: ignore[arg-type]
    )
    assert raw.headers["x-baton-provider"] == "simulated"
    assert raw.headers["x-baton-model"] == "anthropic/claude-haiku-4-5"
    assert_valid("CreateChatCompletionResponse", json.loads(raw.text))


def test_models_lists_the_catalog(local_server: LocalServer) -> None:
    ids = [model.id for model in client(local_server).models.list()]
    assert "simulated/echo" in ids
    assert "openai/gpt-5.4-mini" in ids


def test_missing_key_is_401(local_server: LocalServer) -> None:
    body = assert_openai_error(
        post(
            local_server,
            "/v1/chat/completions",
            {"model": "simulated/echo", "messages": MESSAGES},
            key=None,
        ),
        401,
    )
    assert "Authorization" in body["error"]["message"] or "key" in body["error"]["message"]


def test_wrong_key_is_401_through_the_sdk(local_server: LocalServer) -> None:
    with pytest.raises(openai.AuthenticationError) as raised:
        client(local_server, key="bt_wrong_key").chat.completions.create(
            model="simulated/echo",
            messages=MESSAGES,  # type: ignore[arg-type]
        )
    assert raised.value.status_code == 401
    assert "bt_wrong_key" not in str(raised.value.body)


def test_broken_json_is_400(local_server: LocalServer) -> None:
    body = assert_openai_error(
        post(local_server, "/v1/chat/completions", b'{"model": "simulated/echo", "messages": ['),
        400,
        "invalid_json",
    )
    assert "JSON" in body["error"]["message"]


def test_missing_messages_is_400(local_server: LocalServer) -> None:
    body = assert_openai_error(
        post(local_server, "/v1/chat/completions", {"model": "simulated/echo"}), 400
    )
    assert body["error"]["param"] == "messages"


def test_invalid_field_value_names_the_param(local_server: LocalServer) -> None:
    body = assert_openai_error(
        post(
            local_server,
            "/v1/chat/completions",
            {"model": "simulated/echo", "messages": MESSAGES, "temperature": 7},
        ),
        400,
    )
    assert body["error"]["param"] == "temperature"


def test_unknown_field_is_rejected(local_server: LocalServer) -> None:
    body = assert_openai_error(
        post(
            local_server,
            "/v1/chat/completions",
            {"model": "simulated/echo", "messages": MESSAGES, "temprature": 0},
        ),
        400,
    )
    assert body["error"]["param"] == "temprature"


def test_unknown_model_is_404_and_bare_name_is_400(local_server: LocalServer) -> None:
    assert_openai_error(
        post(local_server, "/v1/chat/completions", {"model": "openai/nope", "messages": MESSAGES}),
        404,
        "model_not_found",
    )
    assert_openai_error(
        post(local_server, "/v1/chat/completions", {"model": "gpt-4o", "messages": MESSAGES}),
        400,
        "model_not_qualified",
    )


def test_oversized_body_is_413(local_server: LocalServer) -> None:
    huge = {"model": "simulated/echo", "messages": [{"role": "user", "content": "x" * 2_100_000}]}
    assert_openai_error(post(local_server, "/v1/chat/completions", huge), 413)


def test_unknown_route_is_404(local_server: LocalServer) -> None:
    response = httpx.get(f"{local_server.url}/v1/nothing-here", timeout=5)
    assert_openai_error(response, 404, "unknown_route")


def test_v2_chat_reports_how_it_was_served(local_server: LocalServer) -> None:
    response = post(
        local_server,
        "/v2/chat",
        {"model": "simulated/echo", "messages": MESSAGES, "baton": {"cache_mode": "off"}},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["baton"]["provider"] == "simulated"
    assert body["baton"]["model"] == "simulated/echo"
    assert body["baton"]["request_id"] == response.headers["x-request-id"]
    body.pop("baton")
    assert_valid("CreateChatCompletionResponse", body)


def test_health_without_and_with_key(local_server: LocalServer) -> None:
    anonymous = httpx.get(f"{local_server.url}/v2/health", timeout=5)
    assert anonymous.status_code == 200
    assert anonymous.json() == {"status": "ok"}
    detailed = httpx.get(
        f"{local_server.url}/v2/health",
        headers={"authorization": f"Bearer {local_server.key}"},
        timeout=5,
    ).json()
    assert detailed["status"] == "ok"
    assert detailed["redis"]["reachable"] is True and detailed["redis"]["latency_ms"] >= 0
    assert detailed["store"]["reachable"] is True
    assert detailed["providers"]["simulated"] == "live"
    assert detailed["providers"]["openai"] == "simulated"
    bad = httpx.get(
        f"{local_server.url}/v2/health", headers={"authorization": "Bearer nope"}, timeout=5
    )
    assert_openai_error(bad, 401)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/usage"),
        ("GET", "/v2/usage/export"),
        ("DELETE", "/v2/usage"),
    ],
)
def test_routes_of_later_issues_answer_501_after_auth(
    local_server: LocalServer, method: str, path: str
) -> None:
    headers = {"authorization": f"Bearer {local_server.key}", "content-type": "application/json"}
    response = httpx.request(
        method, f"{local_server.url}{path}", headers=headers, content=b"{}", timeout=5
    )
    assert_openai_error(response, 501, "not_implemented")
    anonymous = httpx.request(method, f"{local_server.url}{path}", content=b"{}", timeout=5)
    assert_openai_error(anonymous, 401)


def test_openapi_describes_every_route(local_server: LocalServer) -> None:
    document = httpx.get(f"{local_server.url}/openapi.json", timeout=5).json()
    expected = {
        ("/v1/chat/completions", "post"),
        ("/v1/models", "get"),
        ("/v2/chat", "post"),
        ("/v2/chat/batch", "post"),
        ("/v2/route-suggest", "post"),
        ("/v2/health", "get"),
        ("/v2/usage", "get"),
        ("/v2/usage/export", "get"),
        ("/v2/usage", "delete"),
    }
    present = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert expected <= present
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            assert "422" not in op["responses"], (path, method)
            assert "400" in op["responses"], (path, method)
