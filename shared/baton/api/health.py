"""``GET /v2/health``: the overall status for anyone; the details with a valid key.

Status: ``down`` when the store does not answer (no key can be checked, so nothing can
be served) or when every configured real model's circuit breaker is open; ``degraded``
when Redis does not answer (the gateway keeps serving: cache and dedup fail open, usage
goes to the store) or when some breaker is open or half-open; ``ok`` otherwise.

With a key, per provider and model: breaker state, recent error rate and p95 latency
from live traffic, last failure, last recovery, and the open and recent incidents.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.event_handler import Response

from baton import __version__
from baton.api.powertools import authenticate, json_response, make_resolver
from baton.kv import health as health_windows
from baton.kv.client import get_sync_client
from baton.runtime import Runtime, get_runtime

app = make_resolver()
RECENT_INCIDENTS = 20


def _probe(check: Any) -> dict[str, Any]:
    try:
        return {"reachable": True, "latency_ms": round(check(), 2)}
    except Exception as exc:  # any failure means "unreachable"; the kind is reported
        return {"reachable": False, "error": type(exc).__name__}


def _ping_redis() -> float:
    started = time.perf_counter()
    get_sync_client().ping()
    return (time.perf_counter() - started) * 1000


def _breaker_states(runtime: Runtime) -> dict[str, str]:
    """States of the breakers that moved recently (the index); others are closed."""
    client = get_sync_client()
    return {
        target: runtime.breaker.state(client, target).state
        for target in runtime.breaker.targets(client)
    }


def _status(runtime: Runtime, redis_ok: bool, store_ok: bool, states: dict[str, str]) -> str:
    if not store_ok:
        return "down"
    real = [
        m.id for m in runtime.catalog if m.provider != "simulated" and runtime.registry.servable(m)
    ]
    if real and all(states.get(model) == "open" for model in real):
        return "down"
    if not redis_ok or any(state != "closed" for state in states.values()):
        return "degraded"
    return "ok"


def _model_details(runtime: Runtime) -> list[dict[str, Any]]:
    client = get_sync_client()
    breaker = runtime.breaker
    details = []
    for model in runtime.catalog:
        if not runtime.registry.servable(model):
            continue
        status = breaker.state(client, model.id)
        stats = health_windows.window_stats(client, model.id, clock=runtime.clock)
        open_incident = breaker.open_incident(client, model.id)
        details.append(
            {
                "model": model.id,
                "provider": model.provider,
                "breaker": {
                    "state": status.state,
                    "calls_in_window": status.calls,
                    "failures_in_window": status.failures,
                    "opened_at": status.opened_at,
                    "cooldown_until": status.cooldown_until,
                },
                "error_rate": round(stats.error_rate, 4),
                "calls": stats.calls,
                "p95_latency_ms": None if stats.p95_ms is None else round(stats.p95_ms, 1),
                "last_failure_at": status.last_failure_at or stats.last_failure_at,
                "last_recovery_at": status.last_recovery_at,
                "open_incident": None if open_incident is None else asdict(open_incident),
            }
        )
    return details


@app.get("/v2/health", summary="Gateway health", tags=["Baton"])
def health() -> Response[str]:
    runtime = get_runtime()
    redis = _probe(_ping_redis)
    store = _probe(runtime.store.ping)
    states: dict[str, str] = {}
    if redis["reachable"]:
        try:
            states = _breaker_states(runtime)
        except Exception:  # Redis went away between the ping and the read
            redis = {"reachable": False, "error": "RedisUnavailableError"}
    status = _status(runtime, redis["reachable"], store["reachable"], states)
    code = 503 if status == "down" else 200
    if app.current_event.headers.get("authorization") is None:
        return json_response(app, {"status": status}, code)
    authenticate(app)
    body: dict[str, Any] = {
        "status": status,
        "version": __version__,
        "redis": redis,
        "store": store,
        "providers": runtime.registry.statuses(),
    }
    if redis["reachable"]:
        body["models"] = _model_details(runtime)
        body["recent_incidents"] = [
            asdict(incident)
            for incident in runtime.breaker.recent_incidents(
                get_sync_client(), limit=RECENT_INCIDENTS
            )
        ]
    return json_response(app, body, code)
