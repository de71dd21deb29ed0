"""``POST /v2/route-suggest`` through ``baton serve``: the router's recommendation,
ranked with costs and reasons, without calling any provider."""

from __future__ import annotations

from typing import Any

import httpx

from tests.plugins.local_server import LocalServer
from tests.spec import assert_valid


def suggest(server: LocalServer, body: Any, key: str | None = "default") -> httpx.Response:
    headers = (
        {}
        if key is None
        else {"authorization": f"Bearer {server.key if key == 'default' else key}"}
    )
    return httpx.post(f"{server.url}/v2/route-suggest", json=body, headers=headers, timeout=10)


def test_a_prompt_gets_a_ranked_recommendation(local_server: LocalServer) -> None:
    response = suggest(
        local_server, {"prompt": "Write a Python function that merges two sorted lists."}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["task_type"] == "code"
    assert body["complexity"] in {"low", "medium", "high"}
    assert 0 < body["confidence"] <= 1
    recommendations = body["recommendations"]
    assert 1 <= len(recommendations) <= 5
    for item in recommendations:
        assert set(item) >= {"model", "estimated_cost_usd", "reason"}
        assert item["estimated_cost_usd"] > 0
        assert not item["model"].startswith("simulated/")
    assert response.headers["x-request-id"]


def test_messages_and_a_budget_are_honoured(local_server: LocalServer) -> None:
    messages = [
        {"role": "system", "content": "You are a translator."},
        {"role": "user", "content": "Translate into Spanish: the meeting moved to Friday."},
    ]
    unlimited = suggest(local_server, {"messages": messages}).json()
    cheapest = min(item["estimated_cost_usd"] for item in unlimited["recommendations"])
    tight = suggest(local_server, {"messages": messages, "budget_usd": cheapest * 1.01}).json()
    assert unlimited["task_type"] == "translation"
    assert all(item["estimated_cost_usd"] <= cheapest * 1.01 for item in tight["recommendations"])


def test_nothing_within_budget_is_402(local_server: LocalServer) -> None:
    response = suggest(
        local_server, {"prompt": "Summarise the French revolution.", "budget_usd": 0}
    )
    assert response.status_code == 402
    assert_valid("ErrorResponse", response.json())
    assert response.json()["error"]["code"] == "budget_exceeded"


def test_bad_bodies_are_400_and_a_missing_key_401(local_server: LocalServer) -> None:
    for body in (
        {},
        {"prompt": "x", "messages": [{"role": "user", "content": "x"}]},
        {"prompt": 3},
    ):
        response = suggest(local_server, body)
        assert response.status_code == 400, (body, response.text)
        assert_valid("ErrorResponse", response.json())
    assert suggest(local_server, {"prompt": "hi"}, key=None).status_code == 401
