"""The HTTP API's buffered ``POST /v2/chat``: the chat function's ``handler`` (Mangum),
called with API Gateway's payload-2.0 events as Lambda would call it.

API Gateway cuts every integration at 30 s and cannot stream, so this entry answers a
clean 504 in OpenAI's shape before its own cap, and refuses ``stream: true`` with a 400
that says where to stream instead.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from baton.auth import create_key
from baton.config import get_settings
from baton.kv.client import reset_clients
from baton.local.invoke import load_module
from baton.local.lambda_events import LocalLambdaContext, http_api_event
from baton.runtime import get_runtime, set_runtime
from tests.spec import assert_valid

CHAT_APP = Path(__file__).resolve().parents[2] / "functions" / "chat" / "app.py"
# Mangum asks asyncio for the current loop outside one, as it does on Lambda.
pytestmark = pytest.mark.filterwarnings("ignore:There is no current event loop:DeprecationWarning")

HTTP_API_TIMEOUT_S = 0.5
SLOW_ANSWER_S = 3.0

Invoke = Callable[[dict[str, Any]], tuple[int, dict[str, str], dict[str, Any]]]


@pytest.fixture
def invoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Iterator[Invoke]:
    """``invoke(body)`` -> (status, headers, JSON body) from the chat function's handler.

    The function module builds its apps at import, so the settings go into the
    environment first and the module is loaded afresh for each test.
    """
    monkeypatch.setenv("BATON_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BATON_STORE", "embedded")
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("BATON_HTTP_API_TIMEOUT_S", str(HTTP_API_TIMEOUT_S))
    # Retry timings shrink with the deadline, so an attempt still fits in 0.5 s.
    monkeypatch.setenv("BATON_TIME_SCALE", "0.1")
    get_settings.cache_clear()
    set_runtime(None)
    reset_clients()
    handler = load_module(CHAT_APP).handler
    key, _ = create_key(get_runtime().store, f"u{uuid.uuid4().hex[:12]}", "master")

    def call(body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        event = http_api_event(
            method="POST",
            path="/v2/chat",
            headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
            query="",
            body=json.dumps(body).encode(),
        )
        # Lambda grants far more than the HTTP API's cap: the cap is what must bind.
        response = handler(event, LocalLambdaContext(function_name="ChatFunction", timeout_s=30))
        return response["statusCode"], response["headers"], json.loads(response["body"])

    yield call
    set_runtime(None)
    get_settings.cache_clear()
    reset_clients()


def chat(content: str, **extra: Any) -> dict[str, Any]:
    return {"model": "simulated/echo", "messages": [{"role": "user", "content": content}], **extra}


def test_a_slow_answer_gets_a_504_before_the_http_api_cap(invoke: Invoke) -> None:
    fast_status, _, fast = invoke(chat("Summarise Baton."))
    assert fast_status == 200, fast
    assert fast["baton"]["provider"] == "simulated"

    started = time.monotonic()
    status, headers, body = invoke(chat(f"[simulate:slow={int(SLOW_ANSWER_S * 1000)}] Hi."))
    waited = time.monotonic() - started
    assert status == 504, body
    assert_valid("ErrorResponse", body)
    assert body["error"]["type"] == "timeout_error"
    assert body["error"]["code"] == "deadline_exceeded"
    assert headers["x-request-id"]
    # Answered on Baton's own deadline, not after the upstream finally answered.
    assert waited < SLOW_ANSWER_S


def test_stream_true_is_a_clear_400(invoke: Invoke) -> None:
    status, headers, body = invoke(chat("Stream this, please.", stream=True))
    assert status == 400, body
    assert headers["content-type"].startswith("application/json")
    assert_valid("ErrorResponse", body)
    error = body["error"]
    assert (error["type"], error["param"], error["code"]) == (
        "invalid_request_error",
        "stream",
        "streaming_unavailable",
    )
    assert "Function URL" in error["message"] and "stream=false" in error["message"]
