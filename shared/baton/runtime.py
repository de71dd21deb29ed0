"""The per-container object graph: built once at init, shared by every invocation.

Lambda keeps a container's module state between invocations, so clients, caches and
the orchestrator are built on first use and reused (design decision 1). Tests build a
fresh :class:`Runtime` with their own settings and clock through :func:`build_runtime`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from baton.ai.availability import Availability
from baton.ai.budget import BudgetGuard
from baton.ai.chains import Resilience, load_resilience_file
from baton.ai.fallback import ProviderInvoker
from baton.ai.observability import UsageRecorder
from baton.ai.orchestrator import Orchestrator
from baton.ai.router import Router
from baton.auth import Authenticator
from baton.catalog import Catalog, load_catalog
from baton.clock import Clock, SystemClock
from baton.config import Settings, get_settings
from baton.kv.breaker import CircuitBreaker
from baton.kv.budget import BudgetLedger
from baton.kv.cache import ResponseCache
from baton.kv.client import get_async_client
from baton.kv.deduplication import Deduplicator
from baton.kv.rate_limit import RateLimiter
from baton.providers.registry import ProviderRegistry
from baton.store import get_store
from baton.store.base import Store


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    catalog: Catalog
    registry: ProviderRegistry
    breaker: CircuitBreaker
    store: Store
    authenticator: Authenticator
    orchestrator: Orchestrator


def build_runtime(settings: Settings | None = None, clock: Clock | None = None) -> Runtime:
    """Wire every step from settings; nothing here touches the network."""
    settings = settings or get_settings()
    clock = clock or SystemClock()
    catalog = load_catalog()
    registry = ProviderRegistry(
        settings, clock, simulate_missing=settings.simulate_missing_providers
    )
    store = get_store(settings)
    breaker = CircuitBreaker(settings.breaker, clock)
    resilience = Resilience(
        load_resilience_file(str(settings.resilience_file) if settings.resilience_file else None),
        catalog,
        settings.time_scale,
    )
    rate_limiter = RateLimiter()
    orchestrator = Orchestrator(
        settings=settings,
        clock=clock,
        registry=registry,
        router=Router(catalog, servable=registry.servable),
        availability=Availability(
            breaker, get_async_client, clock, refresh_s=settings.durations.seconds(1.0)
        ),
        budgets=BudgetGuard(settings, BudgetLedger(clock), get_async_client),
        rate_limiter=rate_limiter,
        cache=ResponseCache(),
        dedup=Deduplicator(),
        invoker=ProviderInvoker(
            settings,
            clock,
            catalog,
            registry,
            resilience,
            breaker,
            get_async_client,
            admit_model=rate_limiter.admit_model,
        ),
        recorder=UsageRecorder(get_async_client, store, clock),
    )
    if settings.should_preload_providers:
        registry.preload()
    return Runtime(
        settings=settings,
        clock=clock,
        catalog=catalog,
        registry=registry,
        breaker=breaker,
        store=store,
        authenticator=Authenticator(store, clock, settings.key_cache_seconds),
        orchestrator=orchestrator,
    )


_runtime: Runtime | None = None
_lock = threading.Lock()


def get_runtime() -> Runtime:
    """The container's runtime, built on first use."""
    global _runtime
    if _runtime is None:
        with _lock:
            if _runtime is None:
                _runtime = build_runtime()
    return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    """Replace the container's runtime (the local server and tests)."""
    global _runtime
    _runtime = runtime
