"""Settings: explicit argument > environment variable > config file > default.

Every setting Baton reads is declared once, here, with its default and its meaning;
``docs/configuration.md`` is the same list for humans. Most variables carry the
``BATON_`` prefix; the provider and Redis variables keep the names users already know
(``OPENAI_API_KEY``, ``REDIS_URL`` ...). ``BATON_CONFIG_FILE`` may name a TOML file whose
keys are the field names below; environment variables win over it.
"""

from __future__ import annotations

import os
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from baton.clock import Durations

if TYPE_CHECKING:
    from baton.kv.breaker import BreakerSettings

CacheMode = Literal["off", "exact", "semantic"]
StoreKind = Literal["embedded", "dynamodb"]

# The longest a key lookup may be cached per instance: it bounds how long a revoked
# key keeps working (design decision 9).
MAX_KEY_CACHE_SECONDS = 60.0


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """Baton's configuration, validated once per container."""

    model_config = SettingsConfigDict(
        env_prefix="BATON_", extra="ignore", populate_by_name=True, frozen=True
    )

    # --- infrastructure -------------------------------------------------------------
    redis_url: str | None = Field(
        default=None,
        validation_alias=_env("REDIS_URL", "BATON_REDIS_URL"),
        description="Redis to use (redis:// or rediss://). Unset locally: embedded Redis.",
    )
    redis_url_parameter: str | None = Field(
        default=None,
        description="SSM parameter or Secrets Manager secret (ARN or name) holding the "
        "Redis URL; resolved with Powertools Parameters when REDIS_URL is unset.",
    )
    redis_cluster: bool = Field(
        default=False, description="Connect with the cluster protocol (ElastiCache Serverless)."
    )
    redis_socket_timeout_s: float = Field(
        default=0.5,
        gt=0,
        description="Redis connect, read and pool-wait timeout: short, so a dead Redis "
        "degrades a request quickly instead of hanging it.",
    )
    redis_max_connections: int = Field(
        default=100, gt=0, description="Redis connections per pool (per node on a cluster)."
    )
    store: StoreKind = Field(default="embedded", description="Where API keys and aggregates live.")
    data_dir: Path = Field(
        default=Path(".baton"), description="Folder of the embedded store and embedded Redis."
    )
    keys_table: str = Field(default="baton-keys", description="DynamoDB table of API keys.")
    usage_table: str = Field(
        default="baton-usage", description="DynamoDB table of usage aggregates."
    )

    # --- providers --------------------------------------------------------------------
    openai_api_key: str | None = Field(
        default=None,
        validation_alias=_env("OPENAI_API_KEY"),
        description="OpenAI key; unset: its models are simulated locally, refused deployed.",
    )
    openai_base_url: str | None = Field(
        default=None,
        validation_alias=_env("OPENAI_BASE_URL"),
        description="OpenAI API base URL (a proxy or a local fake); unset: the SDK's default.",
    )
    anthropic_api_key: str | None = Field(
        default=None,
        validation_alias=_env("ANTHROPIC_API_KEY"),
        description="Anthropic key; unset: its models are simulated locally, refused deployed.",
    )
    anthropic_base_url: str | None = Field(
        default=None,
        validation_alias=_env("ANTHROPIC_BASE_URL"),
        description="Anthropic API base URL; unset: the SDK's default.",
    )
    gemini_api_key: str | None = Field(
        default=None,
        validation_alias=_env("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        description="Gemini key; unset: its models are simulated locally, refused deployed.",
    )
    gemini_base_url: str | None = Field(
        default=None,
        validation_alias=_env("GEMINI_BASE_URL"),
        description="Gemini API base URL; unset: the SDK's default.",
    )
    provider_keys_parameter: str | None = Field(
        default=None,
        description="Secrets Manager secret holding a JSON object of provider keys "
        '({"OPENAI_API_KEY": ...}); used for keys not set in the environment.',
    )
    preload_providers: bool | None = Field(
        default=None,
        description="Import provider SDKs at init. Default: on under SnapStart, else lazy.",
    )
    simulated_enabled: bool = Field(default=True, description="Serve the simulated/* models.")
    simulated_latency_ms: float = Field(
        default=0.0, ge=0, description="Added latency of a simulated answer."
    )
    simulated_failure_rate: float = Field(
        default=0.0, ge=0, le=1, description="Share of simulated calls that fail with 503."
    )

    # --- resilience -----------------------------------------------------------------------
    resilience_file: Path | None = Field(
        default=None,
        description="JSON file of fallback chains and per-model retry settings; unset: "
        "the one shipped in the package (shared/baton/data/resilience.json).",
    )
    active_probes: bool = Field(
        default=False,
        description="The scheduled function also sends a minimal request to each live "
        "provider's cheapest model and feeds the outcome to the health monitor.",
    )
    breaker_window_s: float = Field(
        default=60.0, gt=0, description="Sliding window of a model's circuit breaker."
    )
    breaker_min_calls: int = Field(
        default=10, gt=0, description="Calls in the window before the breaker may open."
    )
    breaker_failure_rate: float = Field(
        default=0.5, gt=0, le=1, description="Failure rate in the window that opens it."
    )
    breaker_cooldown_s: float = Field(
        default=30.0, gt=0, description="Open time before half-open probes are let through."
    )
    breaker_cooldown_multiplier: float = Field(
        default=2.0, ge=1, description="Cooldown growth after a failed probe."
    )
    breaker_max_cooldown_s: float = Field(default=600.0, gt=0, description="Longest cooldown.")
    breaker_half_open_probes: int = Field(
        default=3, gt=0, description="Probes let through at once while half-open."
    )
    breaker_probe_lease_s: float = Field(
        default=60.0, gt=0, description="How long a probe may hold its slot without reporting."
    )
    incident_retention_days: float = Field(
        default=14.0, gt=0, description="How long closed breaker incidents are kept."
    )

    # --- budgets ---------------------------------------------------------------------------
    budget_free_usd: Decimal | None = Field(
        default=Decimal("1"), ge=0, description="Monthly budget of a free-tier tenant (USD)."
    )
    budget_pro_usd: Decimal | None = Field(
        default=Decimal("50"), ge=0, description="Monthly budget of a pro-tier tenant (USD)."
    )
    budget_expert_usd: Decimal | None = Field(
        default=Decimal("500"), ge=0, description="Monthly budget of an expert-tier tenant."
    )
    budget_master_usd: Decimal | None = Field(
        default=None, ge=0, description="Monthly budget of a master-tier tenant; unset: none."
    )
    budget_fail_open: bool = Field(
        default=True,
        description="When Redis is down, serve without the budget check (marked "
        "x-baton-degraded: budget; usage is still recorded); false answers 503.",
    )

    # --- CloudFront front door ------------------------------------------------------------
    origin_header: str | None = Field(
        default=None,
        description="With CloudFront in front: the header CloudFront adds to every request. "
        "Set, the Function URL refuses requests without the right value (403).",
    )
    origin_secret: str | None = Field(
        default=None, description="The expected value of origin_header (local use)."
    )
    origin_secret_parameter: str | None = Field(
        default=None,
        description="Secrets Manager secret holding the expected value of origin_header.",
    )

    # --- request handling ---------------------------------------------------------------
    drop_unsupported_params: bool = Field(
        default=True,
        description="Drop request fields the chosen provider cannot honour (named in "
        "x-baton-dropped-params); false rejects them with 400.",
    )
    max_body_bytes: int = Field(default=2_000_000, gt=0, description="Largest request body.")
    max_messages: int = Field(default=2_000, gt=0, description="Most messages in one request.")
    max_output_tokens: int = Field(
        default=65_536, gt=0, description="Largest max_tokens a caller may ask for."
    )
    request_timeout_s: float = Field(
        default=120.0, gt=0, description="Deadline of a request on the OpenAI endpoint."
    )
    http_api_timeout_s: float = Field(
        default=27.0,
        gt=0,
        lt=30,
        description="Deadline on the HTTP API, below API Gateway's 30 s integration limit.",
    )
    stream_max_seconds: float = Field(
        default=900.0,
        gt=0,
        description="Longest a stream may run. On Lambda a client that disconnects does "
        "not stop the function, so this (with max_tokens) bounds what it can cost.",
    )
    stream_keepalive_s: float = Field(
        default=10.0,
        gt=0,
        description="While the model thinks before its first token, an SSE comment is "
        "sent this often; an error before then still gets its own HTTP status.",
    )
    stream_first_chunk_timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="An upstream stream whose first chunk takes longer is failed (a "
        "reasoning model may think for a while first; keep-alives flow meanwhile).",
    )
    stream_idle_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="After its first chunk, an upstream stream that sends nothing for "
        "this long is failed.",
    )
    batch_max_items: int = Field(
        default=50, gt=0, description="Most requests in one POST /v2/chat/batch."
    )
    batch_concurrency: int = Field(default=8, gt=0, description="Batch items run at once, at most.")
    default_cache_mode: CacheMode = Field(
        default="exact",
        description="Cache mode when a request names none (x-baton-cache-mode overrides).",
    )
    simulate_missing_providers: bool = Field(
        default=False,
        description="Answer models of providers without an API key with the simulated "
        "provider (baton serve turns this on); off, such models get 404.",
    )
    key_cache_seconds: float = Field(
        default=MAX_KEY_CACHE_SECONDS,
        ge=0,
        le=MAX_KEY_CACHE_SECONDS,
        description="How long an API-key lookup is cached per instance (at most 60 s).",
    )
    log_prompts: bool = Field(
        default=False, description="Log prompt and completion text (off: never logged)."
    )

    # --- local development --------------------------------------------------------------
    dev_api_key: str | None = Field(
        default=None, description="baton serve provisions this key (idempotently)."
    )
    dev_user: str = Field(default="dev", description="The user owning BATON_DEV_API_KEY.")
    dev_tier: Literal["free", "pro", "expert", "master"] = Field(
        default="master", description="The tier of BATON_DEV_API_KEY; a restart applies changes."
    )

    # --- time --------------------------------------------------------------------------
    time_scale: float = Field(
        default=1.0,
        gt=0,
        description="Multiplier for the resilience durations (retry delays, timeouts and "
        "retry-after, breaker windows, cooldowns and leases, the open-breaker cache) so "
        "a test of minute-scale behaviour takes seconds; request and stream timeouts are "
        "set directly.",
    )

    @field_validator("redis_url", "openai_api_key", "anthropic_api_key", "gemini_api_key")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("BATON_CONFIG_FILE")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @property
    def durations(self) -> Durations:
        return Durations(scale=self.time_scale)

    @property
    def breaker(self) -> BreakerSettings:
        """The circuit breaker's tuning, durations scaled by ``time_scale``."""
        from baton.kv.breaker import BreakerSettings

        scale = self.time_scale
        return BreakerSettings(
            window_s=self.breaker_window_s * scale,
            min_calls=self.breaker_min_calls,
            failure_rate=self.breaker_failure_rate,
            cooldown_s=self.breaker_cooldown_s * scale,
            cooldown_multiplier=self.breaker_cooldown_multiplier,
            max_cooldown_s=self.breaker_max_cooldown_s * scale,
            half_open_probes=self.breaker_half_open_probes,
            incident_retention_days=self.incident_retention_days,
            probe_lease_s=self.breaker_probe_lease_s * scale,
        )

    @property
    def should_preload_providers(self) -> bool:
        """Preload SDKs when a SnapStart snapshot will hold them (decision 1)."""
        if self.preload_providers is not None:
            return self.preload_providers
        return os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The container's settings, read once; tests call ``get_settings.cache_clear()``."""
    return Settings()
