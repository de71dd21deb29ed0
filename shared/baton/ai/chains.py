"""Fallback chains and per-model retry policies, read from ``data/resilience.json``
(or the file named by ``BATON_RESILIENCE_FILE``).

A request's chain is its model followed by the request's own ``baton.fallbacks`` when
given, else the model's configured chain. Models are dropped from a chain when their
provider is not configured, when the request does not fit them (size, images, tools,
JSON mode), or when the caller's key may not use them; the model itself stays first
whatever happens, so its own error is what the caller sees when nothing else can help.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import fields, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from baton.ai.retry import RetryPolicy
from baton.ai.router import fit_problem
from baton.catalog import Catalog, ModelInfo
from baton.errors import InvalidRequestError, NotFoundError
from baton.schema import ChatCompletionRequest
from baton.store.base import ApiKeyRecord
from baton.tokens import estimate_prompt_tokens

_POLICY_FIELDS = {f.name for f in fields(RetryPolicy)}


class Resilience:
    """The parsed configuration: chains and retry policies."""

    def __init__(self, raw: dict[str, Any], catalog: Catalog, time_scale: float) -> None:
        self._catalog = catalog
        self._chains: dict[str, list[str]] = {k: list(v) for k, v in raw["chains"].items()}
        retry = raw.get("retry", {})
        self._default = _policy(RetryPolicy(), retry.get("default", {}))
        self._overrides = {
            model: _policy(self._default, values)
            for model, values in retry.get("models", {}).items()
        }
        self._scale = time_scale
        for model_id in [*self._chains, *self._overrides]:
            catalog.get(model_id)  # a typo in the file fails at start-up, not per request
        for chain in self._chains.values():
            for model_id in chain:
                catalog.get(model_id)

    def policy(self, model: ModelInfo) -> RetryPolicy:
        return self._overrides.get(model.id, self._default).scaled(self._scale)

    def chain(
        self,
        request: ChatCompletionRequest,
        first: ModelInfo,
        key: ApiKeyRecord,
        servable: Callable[[ModelInfo], bool],
    ) -> list[ModelInfo]:
        """``first`` and the fallbacks that could serve this request, in order."""
        if request.baton is not None and request.baton.fallbacks is not None:
            names = request.baton.fallbacks
            try:
                peers = [self._catalog.get(name) for name in names]
            except (NotFoundError, InvalidRequestError) as exc:
                raise InvalidRequestError(
                    f"baton.fallbacks: {exc.message}", param="baton.fallbacks"
                ) from exc
        else:
            peers = [self._catalog.get(name) for name in self._chains.get(first.id, [])]
        prompt_tokens = estimate_prompt_tokens(request)
        allowed = key.overrides.allowed_models
        chain = [first]
        for model in peers:
            if (
                model not in chain
                and servable(model)
                and (allowed is None or model.id in allowed)
                and fit_problem(model, request, prompt_tokens) is None
            ):
                chain.append(model)
        return chain


def _policy(base: RetryPolicy, values: dict[str, Any]) -> RetryPolicy:
    unknown = set(values) - _POLICY_FIELDS
    if unknown:
        raise ValueError(f"unknown retry settings: {sorted(unknown)}")
    return replace(base, **values)


@lru_cache(maxsize=4)
def load_resilience_file(path: str | None) -> dict[str, Any]:
    """The raw configuration: the named file, or the one shipped in the package."""
    if path:
        data: dict[str, Any] = json.loads(Path(path).read_text())
    else:
        text = resources.files("baton.data").joinpath("resilience.json").read_text()
        data = json.loads(text)
    return data
