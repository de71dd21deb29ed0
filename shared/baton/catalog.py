"""The model catalog: what each model can do, read from ``data/models.json``.

Prices are deliberately absent from the data file: :func:`cost_micro_usd` asks
``genai-prices`` (maintained price tables, design decision 7) so nobody types a price
into the code.
"""

from __future__ import annotations

import json
from decimal import ROUND_CEILING, Decimal
from functools import lru_cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field

from baton.errors import InvalidRequestError, NotFoundError
from baton.tasks import TaskType
from baton.usage import MICRO_USD_PER_USD, TokenUsage

PROVIDERS = ("openai", "anthropic", "google", "simulated")


class ModelInfo(BaseModel):
    """One catalog entry. ``id`` is provider-qualified: ``openai/gpt-5.4-mini``."""

    model_config = ConfigDict(frozen=True)

    id: str
    price_ref: str | None = None
    context_window: int = Field(gt=0)
    max_output_tokens: int = Field(gt=0)
    vision: bool = False
    tools: bool = False
    json_mode: bool = False
    reasoning: bool = False
    # 1-10 per task type, relative within the catalog; the rationale is quality_source.
    quality: dict[TaskType, int] = Field(default_factory=dict)
    quality_source: str = ""

    @property
    def provider(self) -> str:
        return self.id.split("/", 1)[0]

    @property
    def name(self) -> str:
        """The provider's own model name, sent upstream."""
        return self.id.split("/", 1)[1]


class Catalog:
    """Lookup of models by provider-qualified id."""

    def __init__(self, models: list[ModelInfo]) -> None:
        self._models = {m.id: m for m in models}

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._models.values())

    def get(self, model_id: str) -> ModelInfo:
        """The model, or a 404 naming what exists; a bare name gets a 400 hint."""
        found = self._models.get(model_id)
        if found is not None:
            return found
        if "/" not in model_id:
            raise InvalidRequestError(
                f"Model ids are provider-qualified, e.g. 'openai/{model_id}' or "
                "'simulated/echo'; 'auto' lets the router choose.",
                param="model",
                code="model_not_qualified",
            )
        raise NotFoundError(
            f"The model '{model_id}' does not exist or is not in Baton's catalog; "
            "GET /v1/models lists the available ones.",
            param="model",
        )

    def for_providers(self, providers: set[str]) -> list[ModelInfo]:
        return [m for m in self._models.values() if m.provider in providers]


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """The catalog shipped in the package, parsed once per container."""
    raw = json.loads(resources.files("baton.data").joinpath("models.json").read_text())
    return Catalog([ModelInfo.model_validate(m) for m in raw["models"]])


def cost_micro_usd(model: ModelInfo, tokens: TokenUsage) -> int:
    """What ``tokens`` on ``model`` cost, in integer micro-dollars, rounded up.

    Rounding up means accounting never under-charges by a fraction of a micro-dollar.
    Models without a price reference (simulated) cost nothing.
    """
    if model.price_ref is None:
        return 0
    from genai_prices import Usage, calc_price

    usage = Usage(
        input_tokens=tokens.input_tokens,
        cache_read_tokens=tokens.cache_read_tokens or None,
        cache_write_tokens=tokens.cache_write_tokens or None,
        output_tokens=tokens.output_tokens,
    )
    price = calc_price(usage, model.price_ref, provider_id=model.provider)
    micro = (Decimal(price.total_price) * MICRO_USD_PER_USD).to_integral_value(ROUND_CEILING)
    return int(micro)
