"""API keys: minting, hashing, the dev key, and authenticating a request's header.

A key looks like ``bt_<key_id>_<secret>``: ``key_id`` (16 hex characters) names the key
in ``baton keys list|revoke`` and in logs, and the secret carries 256 random bits. Only
the SHA-256 hex of the whole key is stored (design decision 9). A plain hash is enough
because the keys are random, not chosen by people: a slow password hash would add
latency to every cache miss without making a 256-bit secret any harder to guess. The
dev key (``BATON_DEV_API_KEY``) may be any bearer token the developer picks; its
``key_id`` is derived from its hash, so re-provisioning keeps the same id.

Neither the key nor its hash is ever logged or put in an error message.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections import OrderedDict
from datetime import UTC, datetime

from baton.clock import Clock, SystemClock
from baton.config import MAX_KEY_CACHE_SECONDS
from baton.errors import AuthenticationError
from baton.store import ApiKeyRecord, KeyOverrides, Store, Tier

KEY_PREFIX = "bt_"
_KEY_ID_BYTES = 8  # 16 hex characters: short enough to type, 2**64 ids
_SECRET_BYTES = 32  # 256 bits
# Longer than any key Baton mints, short enough that a junk header costs nothing.
MAX_KEY_LENGTH = 256

# Unknown keys are cached too, so a client hammering with a wrong key costs one store
# read per few seconds instead of one per request; but only briefly, so a key created
# (or a dev key provisioned) after a failed attempt starts working within seconds.
DEFAULT_MISS_CACHE_SECONDS = 5.0
# Bounds the memory a flood of distinct junk keys can take.
DEFAULT_MAX_CACHED_KEYS = 10_000


def hash_key(key: str) -> str:
    """SHA-256 hex of the full key: the only form in which a key is stored."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(
    store: Store,
    user: str,
    tier: Tier,
    overrides: KeyOverrides | None = None,
    *,
    clock: Clock | None = None,
) -> tuple[str, ApiKeyRecord]:
    """Mint and store a new key; returns the plaintext key (shown once) and its record.

    Raises ``pydantic.ValidationError`` for an invalid user or tier.
    """
    key_id = secrets.token_hex(_KEY_ID_BYTES)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(_SECRET_BYTES)}"
    record = ApiKeyRecord(
        key_id=key_id,
        key_hash=hash_key(key),
        user=user,
        tier=tier,
        overrides=overrides or KeyOverrides(),
        created_at=_now(clock or SystemClock()),
    )
    store.put_key(record)
    return key, record


def revoke(store: Store, key_id: str) -> bool:
    """Revoke a key by id; ``False`` when there is no such key.

    Instances that cached the key keep accepting it for at most their cache window
    (``Settings.key_cache_seconds``, never more than 60 s).
    """
    return store.revoke_key(key_id)


def provision_dev_key(
    store: Store, key: str, user: str, tier: Tier, *, clock: Clock | None = None
) -> ApiKeyRecord:
    """Make ``key`` an active key of ``user`` with ``tier``; idempotent.

    Re-running with the same arguments writes nothing; with another user or tier it
    updates the key in place (same key_id, original created_at). A revoked dev key is
    reactivated: whoever sets ``BATON_DEV_API_KEY`` asks for it to work.
    """
    if not _is_token(key):
        raise ValueError(
            f"the dev API key must be 1-{MAX_KEY_LENGTH} printable characters without spaces"
        )
    key_hash = hash_key(key)
    existing = store.get_key_by_hash(key_hash)
    if (
        existing is not None
        and existing.user == user
        and existing.tier == tier
        and not existing.revoked
        and existing.overrides == KeyOverrides()
    ):
        return existing
    record = ApiKeyRecord(
        key_id=key_hash[: _KEY_ID_BYTES * 2],
        key_hash=key_hash,
        user=user,
        tier=tier,
        created_at=existing.created_at if existing else _now(clock or SystemClock()),
    )
    store.put_key(record)
    return record


class Authenticator:
    """Turns an ``Authorization`` header into the caller's key record, or a 401.

    Lookups are cached per instance, keyed by key hash: hits (active or revoked) for
    ``cache_seconds`` (at most 60 s, which bounds how long a revoked key keeps working),
    misses for the shorter ``miss_cache_seconds``. Thread-safe: the cache sits behind a
    lock that is never held during a store call, so one slow lookup blocks nobody else.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        cache_seconds: float,
        *,
        miss_cache_seconds: float | None = None,
        max_cached_keys: int = DEFAULT_MAX_CACHED_KEYS,
    ) -> None:
        if not 0 <= cache_seconds <= MAX_KEY_CACHE_SECONDS:
            raise ValueError(f"cache_seconds must be within 0..{MAX_KEY_CACHE_SECONDS}")
        self._store = store
        self._clock = clock
        self._hit_ttl = cache_seconds
        self._miss_ttl = min(
            cache_seconds,
            DEFAULT_MISS_CACHE_SECONDS if miss_cache_seconds is None else miss_cache_seconds,
        )
        self._cache = _TtlCache(clock, max_cached_keys)

    def authenticate(self, authorization_header: str | None) -> ApiKeyRecord:
        """The active key record for this header; ``AuthenticationError`` otherwise.

        May raise :class:`~baton.store.StoreUnavailableError` (503) when the store cannot
        be asked; that is not the caller's fault, so it is not turned into a 401.
        """
        key_hash = hash_key(_bearer_token(authorization_header))
        found, record = self._cache.get(key_hash)
        if not found:
            record = self._store.get_key_by_hash(key_hash)
            self._cache.put(key_hash, record, self._hit_ttl if record else self._miss_ttl)
        if record is None:
            raise AuthenticationError("Invalid API key: no such key exists.")
        if record.revoked:
            raise AuthenticationError("This API key has been revoked.", code="revoked_api_key")
        return record


def _bearer_token(header: str | None) -> str:
    if header is None or not header.strip():
        raise AuthenticationError(
            "Missing API key: send the header 'Authorization: Bearer <key>'.",
            code="missing_api_key",
        )
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not _is_token(token):
        raise AuthenticationError(
            "Malformed Authorization header: expected 'Bearer <key>' with one key of at most "
            f"{MAX_KEY_LENGTH} printable characters.",
            code="malformed_authorization",
        )
    return token


def _is_token(text: str) -> bool:
    """1..MAX_KEY_LENGTH visible ASCII characters (no spaces or control characters)."""
    return 0 < len(text) <= MAX_KEY_LENGTH and all("!" <= char <= "~" for char in text)


def _now(clock: Clock) -> datetime:
    return datetime.fromtimestamp(clock.time(), UTC)


class _TtlCache:
    """A bounded map whose entries each expire after their own TTL on the given clock.

    Hand-rolled (30 lines) because ``cachetools.TLRUCache`` would be a new layer
    dependency for this one use, and the entries must expire on Baton's injectable clock.
    """

    def __init__(self, clock: Clock, max_entries: int) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[ApiKeyRecord | None, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[bool, ApiKeyRecord | None]:
        """``(True, value)`` for a live entry, ``(False, None)`` otherwise."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False, None
            value, expires_at = entry
            if self._clock.monotonic() >= expires_at:
                del self._entries[key]
                return False, None
            return True, value

    def put(self, key: str, value: ApiKeyRecord | None, ttl: float) -> None:
        if ttl <= 0:
            return
        with self._lock:
            self._entries.pop(key, None)
            while len(self._entries) >= self._max_entries:
                self._entries.popitem(last=False)  # the oldest insertion goes first
            self._entries[key] = (value, self._clock.monotonic() + ttl)
