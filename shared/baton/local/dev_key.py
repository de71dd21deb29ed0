"""Provisioning ``BATON_DEV_API_KEY`` for ``baton serve`` (pinned contract)."""

from __future__ import annotations

from baton.auth import provision_dev_key
from baton.config import get_settings
from baton.store.base import ApiKeyRecord, Store


def provision_from_environment(store: Store) -> ApiKeyRecord | None:
    """Provision the dev key for ``BATON_DEV_USER`` with ``BATON_DEV_TIER``, if set.

    Idempotent; restarting with another tier changes the key's tier.
    """
    settings = get_settings()
    if not settings.dev_api_key:
        return None
    return provision_dev_key(store, settings.dev_api_key, settings.dev_user, settings.dev_tier)
