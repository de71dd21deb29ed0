"""Which providers are live, and one adapter per provider per container.

Design decision 1: an SDK import is expensive (``anthropic`` alone ~1 s), so adapters
are imported on first use, unless SnapStart will snapshot the container, in which case
:meth:`ProviderRegistry.preload` imports and builds them during init and
:meth:`ProviderRegistry.reconnect` rebuilds their network clients after a restore.

A provider is *live* when it has an API key (from the environment, or from the Secrets
Manager secret named by ``BATON_PROVIDER_KEYS_PARAMETER``). ``baton serve`` answers
models of providers without a key with the simulated provider, so a fresh machine can
use every model id; deployed, such models are refused with a clear error.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from typing import Literal

from baton.catalog import ModelInfo
from baton.clock import Clock
from baton.config import Settings
from baton.errors import NotFoundError
from baton.providers.base import Provider
from baton.providers.simulated import SimulatedProvider

ProviderStatus = Literal["live", "simulated", "unconfigured"]


@dataclass(frozen=True)
class _AdapterSpec:
    module: str
    cls: str
    key_env: str


_ADAPTERS: dict[str, _AdapterSpec] = {
    "openai": _AdapterSpec("baton.providers.openai", "OpenAIProvider", "OPENAI_API_KEY"),
    "anthropic": _AdapterSpec(
        "baton.providers.anthropic", "AnthropicProvider", "ANTHROPIC_API_KEY"
    ),
    "google": _AdapterSpec("baton.providers.google", "GoogleProvider", "GEMINI_API_KEY"),
}


class ProviderRegistry:
    """Builds adapters lazily (or eagerly with SnapStart) and says which are live."""

    def __init__(self, settings: Settings, clock: Clock, simulate_missing: bool = False) -> None:
        self._settings = settings
        self._simulate_missing = simulate_missing
        self._adapters: dict[str, Provider] = {}
        self._lock = threading.Lock()
        self._secret_keys: dict[str, str] | None = None
        self._simulated = SimulatedProvider(
            clock,
            latency_ms=settings.simulated_latency_ms,
            failure_rate=settings.simulated_failure_rate,
        )

    # --- status --------------------------------------------------------------------
    def status(self, provider: str) -> ProviderStatus:
        if provider == "simulated":
            return "live" if self._settings.simulated_enabled else "unconfigured"
        if self._credentials(provider)[0]:
            return "live"
        return "simulated" if self._simulate_missing else "unconfigured"

    def statuses(self) -> dict[str, ProviderStatus]:
        return {name: self.status(name) for name in (*_ADAPTERS, "simulated")}

    def servable(self, model: ModelInfo) -> bool:
        return self.status(model.provider) != "unconfigured"

    # --- adapters --------------------------------------------------------------------
    def for_model(self, model: ModelInfo) -> Provider:
        """The adapter that answers ``model``: its provider's, or the simulated one."""
        status = self.status(model.provider)
        if status == "unconfigured":
            raise NotFoundError(
                f"The model '{model.id}' is not available: provider '{model.provider}' "
                "is not configured on this deployment.",
                param="model",
                code="provider_not_configured",
            )
        if status == "simulated" or model.provider == "simulated":
            return self._simulated
        return self._adapter(model.provider)

    def _adapter(self, provider: str) -> Provider:
        adapter = self._adapters.get(provider)
        if adapter is not None:
            return adapter
        with self._lock:
            adapter = self._adapters.get(provider)
            if adapter is None:
                spec = _ADAPTERS[provider]
                cls = getattr(importlib.import_module(spec.module), spec.cls)
                api_key, base_url = self._credentials(provider)
                adapter = cls(api_key=api_key, base_url=base_url)
                self._adapters[provider] = adapter
        return adapter

    def preload(self) -> None:
        """Import and build every live provider now (SnapStart init)."""
        for provider in _ADAPTERS:
            if self.status(provider) == "live":
                self._adapter(provider)

    async def aclose(self) -> None:
        """Close every adapter's network clients (tests, and orderly shutdowns)."""
        with self._lock:
            adapters, self._adapters = list(self._adapters.values()), {}
        for adapter in adapters:
            await adapter.aclose()

    def reconnect(self) -> None:
        """Rebuild network clients after a SnapStart restore.

        Connections in the snapshot are dead (and may be shared by every restored
        copy), so the old clients are dropped without closing them, which would only
        wait on sockets that no longer exist.
        """
        with self._lock:
            self._adapters = {}
        self.preload()

    # --- credentials -----------------------------------------------------------------
    def _credentials(self, provider: str) -> tuple[str | None, str | None]:
        settings = self._settings
        key, base_url = {
            "openai": (settings.openai_api_key, settings.openai_base_url),
            "anthropic": (settings.anthropic_api_key, settings.anthropic_base_url),
            "google": (settings.gemini_api_key, settings.gemini_base_url),
        }[provider]
        if key is None and settings.provider_keys_parameter:
            key = self._keys_from_secret().get(_ADAPTERS[provider].key_env)
        return key, base_url

    def _keys_from_secret(self) -> dict[str, str]:
        """Provider keys from Secrets Manager, fetched once (Powertools caches too)."""
        if self._secret_keys is None:
            from aws_lambda_powertools.utilities import parameters

            name = self._settings.provider_keys_parameter
            assert name is not None
            value = parameters.get_secret(name, transform="json", max_age=300)
            self._secret_keys = {k: str(v) for k, v in dict(value).items() if v}
        return self._secret_keys
