"""``GET /v2/health``: overall status for anyone; the details with a valid key.

Status: ``ok`` when Redis and the store answer; ``degraded`` when Redis does not (the
gateway keeps serving: cache and dedup fail open, usage goes to the store); ``down``
when the store does not (no key can be checked, so no request can be served).
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.event_handler import Response

from baton import __version__
from baton.api.powertools import authenticate, json_response, make_resolver
from baton.kv.client import get_sync_client
from baton.runtime import get_runtime

app = make_resolver()


def _probe(check: Any) -> dict[str, Any]:
    try:
        return {"reachable": True, "latency_ms": round(check(), 2)}
    except Exception as exc:  # any failure means "unreachable"; the kind is reported
        return {"reachable": False, "error": type(exc).__name__}


def _ping_redis() -> float:
    started = time.perf_counter()
    get_sync_client().ping()
    return (time.perf_counter() - started) * 1000


@app.get("/v2/health", summary="Gateway health", tags=["Baton"])
def health() -> Response[str]:
    runtime = get_runtime()
    redis = _probe(_ping_redis)
    store = _probe(runtime.store.ping)
    status = "down" if not store["reachable"] else "ok" if redis["reachable"] else "degraded"
    code = 503 if status == "down" else 200
    if app.current_event.headers.get("authorization") is None:
        return json_response(app, {"status": status}, code)
    authenticate(app)
    return json_response(
        app,
        {
            "status": status,
            "version": __version__,
            "redis": redis,
            "store": store,
            "providers": runtime.registry.statuses(),
        },
        code,
    )
