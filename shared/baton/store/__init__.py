"""API keys and usage aggregates: one contract, a DynamoDB and an embedded backend.

``get_store(settings)`` picks the backend named by ``Settings.store`` and keeps one
instance per container (a Lambda container, or the local server process), because both
backends hold a connection worth reusing. Backends are imported only when chosen, so the
embedded path never imports boto3.
"""

from __future__ import annotations

from functools import lru_cache

from baton.config import Settings
from baton.store.base import (
    TIERS,
    AggregateRow,
    ApiKeyRecord,
    KeyOverrides,
    Store,
    Tier,
)
from baton.store.exceptions import StoreError, StoreUnavailableError

__all__ = [
    "TIERS",
    "AggregateRow",
    "ApiKeyRecord",
    "KeyOverrides",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "Tier",
    "get_store",
]


# Keyed by the (frozen, hashable) settings, so a test that changes BATON_DATA_DIR and
# clears get_settings gets a new store; ``get_store.cache_clear()`` drops them all.
@lru_cache(maxsize=4)
def get_store(settings: Settings) -> Store:
    """The container's store for these settings."""
    if settings.store == "dynamodb":
        from baton.store.dynamodb import DynamoDBStore

        return DynamoDBStore(settings.keys_table, settings.usage_table)
    from baton.store.embedded import EmbeddedStore

    return EmbeddedStore(settings.data_dir)
