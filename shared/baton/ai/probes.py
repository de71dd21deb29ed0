"""Active health probes: one minimal request to each live provider, on a schedule.

Passive monitoring only sees providers that get traffic; a quiet provider's first
caller after an outage would find out the hard way. When ``BATON_ACTIVE_PROBES`` is on,
the scheduled function asks each live provider's cheapest model for a one-word answer
and feeds the outcome (ok or not, and its latency) to the same health windows live
traffic feeds (:mod:`baton.kv.health`). Probes do not move circuit breakers: a breaker
judges the traffic it lets through.
"""

from __future__ import annotations

from dataclasses import dataclass

from baton.catalog import ModelInfo, cost_micro_usd
from baton.errors import BatonError
from baton.kv import health
from baton.kv.client import get_async_client
from baton.kv.exceptions import RedisUnavailableError
from baton.providers.base import ProviderCall
from baton.runtime import Runtime
from baton.schema import ChatCompletionRequest, UserMessage
from baton.usage import TokenUsage

PROBE_TIMEOUT_S = 10.0
_PROBE_SIZE = TokenUsage(input_tokens=10, output_tokens=5)


@dataclass(frozen=True)
class ProbeResult:
    provider: str
    model: str
    ok: bool
    latency_ms: float
    error: str | None = None
    recorded: bool = True


def probe_targets(runtime: Runtime) -> list[ModelInfo]:
    """The cheapest catalog model of each live, real provider."""
    cheapest: dict[str, ModelInfo] = {}
    for model in runtime.catalog:
        if model.provider == "simulated" or runtime.registry.status(model.provider) != "live":
            continue
        current = cheapest.get(model.provider)
        if current is None or cost_micro_usd(model, _PROBE_SIZE) < cost_micro_usd(
            current, _PROBE_SIZE
        ):
            cheapest[model.provider] = model
    return list(cheapest.values())


async def run_probes(runtime: Runtime) -> list[ProbeResult]:
    """Probe every live provider once; never raises for a provider's failure."""
    results = []
    for model in probe_targets(runtime):
        request = ChatCompletionRequest(
            model=model.id,
            messages=[UserMessage(role="user", content="Reply with the word: ok")],
            max_tokens=16,
        )
        adapter = runtime.registry.for_model(model)
        started = runtime.clock.monotonic()
        error: str | None = None
        try:
            await adapter.complete(ProviderCall(request, model, PROBE_TIMEOUT_S))
        except BatonError as exc:
            error = exc.code or type(exc).__name__
        latency_ms = (runtime.clock.monotonic() - started) * 1000
        recorded = True
        try:
            await health.record_call(
                await get_async_client(),
                model.id,
                ok=error is None,
                latency_ms=latency_ms,
                clock=runtime.clock,
            )
        except RedisUnavailableError:
            recorded = False
        results.append(
            ProbeResult(model.provider, model.id, error is None, latency_ms, error, recorded)
        )
    return results
