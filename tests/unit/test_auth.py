"""Authentication: key minting and hashing, header parsing, the lookup cache, dev keys.

Time moves only when a test says so (``ManualClock``), so cache windows are exact.
"""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from baton import auth
from baton.errors import AuthenticationError
from baton.store import ApiKeyRecord, KeyOverrides, Store, StoreError
from baton.store.embedded import EmbeddedStore


class ManualClock:
    """A clock that stands still until ``advance`` is called."""

    def __init__(self) -> None:
        self._now = 1_750_000_000.0

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self._now += seconds


class CountingStore:
    """Counts the store calls authentication makes, passing each to the real store."""

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
        self.lookups = 0
        self.writes = 0
        real_get, real_put = store.get_key_by_hash, store.put_key

        def get(key_hash: str) -> ApiKeyRecord | None:
            self.lookups += 1
            return real_get(key_hash)

        def put(record: ApiKeyRecord) -> None:
            self.writes += 1
            real_put(record)

        monkeypatch.setattr(store, "get_key_by_hash", get)
        monkeypatch.setattr(store, "put_key", put)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def counting(embedded_store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch) -> CountingStore:
    return CountingStore(embedded_store, monkeypatch)


def bearer(key: str) -> str:
    return f"Bearer {key}"


# --- minting and hashing ---------------------------------------------------------------


def test_hash_is_sha256_hex_of_the_whole_key() -> None:
    assert auth.hash_key("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    assert auth.hash_key("bt_x_1") != auth.hash_key("bt_x_2")


def test_created_key_is_stored_only_as_its_hash(embedded_store: EmbeddedStore) -> None:
    overrides = KeyOverrides(requests_per_minute=5)
    key, record = auth.create_key(embedded_store, "alice", "pro", overrides)

    prefix, key_id, secret = key.split("_", 2)
    assert prefix == "bt" and key_id == record.key_id and len(secret) >= 43
    assert record.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert (record.user, record.tier, record.overrides) == ("alice", "pro", overrides)
    assert embedded_store.get_key_by_hash(record.key_hash) == record
    stored = b"".join(path.read_bytes() for path in embedded_store.path.parent.iterdir())
    assert record.key_hash.encode() in stored  # the search below looks in the right place
    assert secret.encode() not in stored
    assert secret not in record.model_dump_json()


def test_created_keys_are_unique(embedded_store: EmbeddedStore) -> None:
    minted = [auth.create_key(embedded_store, "alice", "free") for _ in range(20)]
    assert len({key for key, _ in minted}) == 20
    assert len({record.key_id for _, record in minted}) == 20


def test_invalid_user_is_refused(embedded_store: EmbeddedStore) -> None:
    with pytest.raises(ValueError, match="user"):
        auth.create_key(embedded_store, "{tenant}", "pro")
    assert embedded_store.list_keys("{tenant}") == []


# --- the Authorization header ------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "   "])
def test_missing_header_is_a_401_saying_so(
    embedded_store: EmbeddedStore, clock: ManualClock, header: str | None
) -> None:
    authenticator = auth.Authenticator(embedded_store, clock, 30)
    with pytest.raises(AuthenticationError) as caught:
        authenticator.authenticate(header)
    assert caught.value.status == 401
    assert caught.value.code == "missing_api_key"
    assert "Missing API key" in caught.value.message


@pytest.mark.parametrize(
    "header",
    [
        "Basic c2VjcmV0LWtleQ==",
        "Bearer",
        "Bearer    ",
        "Bearer secret-key extra",
        "Bearer secret\x00key",
        "Bearer sécret-key",
        "Token secret-key",
        "Bearer " + "k" * (auth.MAX_KEY_LENGTH + 1),
    ],
    ids=["basic", "no-key", "blank-key", "two-words", "control", "non-ascii", "scheme", "long"],
)
def test_malformed_header_is_a_401_without_the_key(
    embedded_store: EmbeddedStore, clock: ManualClock, header: str
) -> None:
    authenticator = auth.Authenticator(embedded_store, clock, 30)
    with pytest.raises(AuthenticationError) as caught:
        authenticator.authenticate(header)
    assert caught.value.code == "malformed_authorization"
    assert "secret" not in caught.value.message
    assert "c2VjcmV0" not in caught.value.message
    body = caught.value.body()["error"]
    assert body["type"] == "authentication_error"
    assert set(body) == {"message", "type", "param", "code"}


def test_unknown_key_is_a_401_without_the_key(
    embedded_store: EmbeddedStore, clock: ManualClock
) -> None:
    authenticator = auth.Authenticator(embedded_store, clock, 30)
    with pytest.raises(AuthenticationError) as caught:
        authenticator.authenticate(bearer("bt_0000_not-a-real-secret"))
    assert caught.value.code == "invalid_api_key"
    assert "not-a-real-secret" not in caught.value.message


@pytest.mark.parametrize("template", ["Bearer {}", "bearer {}", "  BEARER   {}  "])
def test_valid_key_authenticates_whatever_the_scheme_case(
    embedded_store: EmbeddedStore, clock: ManualClock, template: str
) -> None:
    key, record = auth.create_key(embedded_store, "alice", "expert")
    authenticator = auth.Authenticator(embedded_store, clock, 30)
    assert authenticator.authenticate(template.format(key)) == record


# --- the lookup cache -------------------------------------------------------------------


def test_hits_are_cached_for_the_cache_window(
    embedded_store: EmbeddedStore, counting: CountingStore, clock: ManualClock
) -> None:
    key, _ = auth.create_key(embedded_store, "alice", "pro")
    authenticator = auth.Authenticator(embedded_store, clock, cache_seconds=30)

    authenticator.authenticate(bearer(key))
    clock.advance(29.9)
    authenticator.authenticate(bearer(key))
    assert counting.lookups == 1

    clock.advance(0.1)
    authenticator.authenticate(bearer(key))
    assert counting.lookups == 2


def test_revoked_key_works_until_the_cache_window_ends_then_fails(
    embedded_store: EmbeddedStore, clock: ManualClock
) -> None:
    key, record = auth.create_key(embedded_store, "alice", "pro")
    authenticator = auth.Authenticator(embedded_store, clock, cache_seconds=60)
    assert authenticator.authenticate(bearer(key)) == record

    clock.advance(10)
    assert auth.revoke(embedded_store, record.key_id) is True
    clock.advance(49.9)  # 59.9 s after the lookup: still cached
    assert authenticator.authenticate(bearer(key)) == record

    clock.advance(0.1)
    with pytest.raises(AuthenticationError) as caught:
        authenticator.authenticate(bearer(key))
    assert caught.value.code == "revoked_api_key"
    assert "revoked" in caught.value.message


def test_without_a_cache_revocation_is_immediate(
    embedded_store: EmbeddedStore, clock: ManualClock
) -> None:
    key, record = auth.create_key(embedded_store, "alice", "pro")
    authenticator = auth.Authenticator(embedded_store, clock, cache_seconds=0)
    authenticator.authenticate(bearer(key))
    auth.revoke(embedded_store, record.key_id)
    with pytest.raises(AuthenticationError, match="revoked"):
        authenticator.authenticate(bearer(key))


def test_misses_are_cached_briefly_so_a_new_key_works_soon(
    embedded_store: EmbeddedStore, counting: CountingStore, clock: ManualClock
) -> None:
    authenticator = auth.Authenticator(embedded_store, clock, cache_seconds=60)
    for _ in range(3):
        with pytest.raises(AuthenticationError):
            authenticator.authenticate(bearer("late-key"))
    assert counting.lookups == 1  # the miss is cached

    auth.provision_dev_key(embedded_store, "late-key", "dev", "master", clock=clock)
    clock.advance(auth.DEFAULT_MISS_CACHE_SECONDS - 0.1)
    with pytest.raises(AuthenticationError):
        authenticator.authenticate(bearer("late-key"))

    clock.advance(0.1)
    assert authenticator.authenticate(bearer("late-key")).user == "dev"


def test_miss_window_never_exceeds_the_hit_window(
    embedded_store: EmbeddedStore, clock: ManualClock
) -> None:
    authenticator = auth.Authenticator(embedded_store, clock, cache_seconds=1)
    with pytest.raises(AuthenticationError):
        authenticator.authenticate(bearer("later-key"))
    auth.provision_dev_key(embedded_store, "later-key", "dev", "pro", clock=clock)
    clock.advance(1)
    assert authenticator.authenticate(bearer("later-key")).tier == "pro"


def test_cache_window_over_sixty_seconds_is_refused(
    embedded_store: EmbeddedStore, clock: ManualClock
) -> None:
    with pytest.raises(ValueError, match="cache_seconds"):
        auth.Authenticator(embedded_store, clock, cache_seconds=61)


def test_cache_is_bounded(
    embedded_store: EmbeddedStore, counting: CountingStore, clock: ManualClock
) -> None:
    keys = [auth.create_key(embedded_store, "alice", "free")[0] for _ in range(3)]
    authenticator = auth.Authenticator(embedded_store, clock, 60, max_cached_keys=2)
    for key in keys:
        authenticator.authenticate(bearer(key))
    assert counting.lookups == 3

    authenticator.authenticate(bearer(keys[2]))  # still cached
    assert counting.lookups == 3
    authenticator.authenticate(bearer(keys[0]))  # evicted first
    assert counting.lookups == 4


def test_concurrent_authentication_from_many_threads(
    embedded_store: EmbeddedStore, clock: ManualClock
) -> None:
    minted = [auth.create_key(embedded_store, f"user{index}", "pro") for index in range(4)]
    authenticator = auth.Authenticator(embedded_store, clock, 60, max_cached_keys=3)
    start = threading.Barrier(8)

    def worker(offset: int) -> list[bool]:
        start.wait()
        results = []
        for turn in range(100):
            key, record = minted[(offset + turn) % len(minted)]
            results.append(authenticator.authenticate(bearer(key)) == record)
        return results

    with ThreadPoolExecutor(8) as pool:
        outcomes = [ok for results in pool.map(worker, range(8)) for ok in results]
    assert len(outcomes) == 800 and all(outcomes)


def test_store_failure_is_not_a_401(store_data_dir: Any, clock: ManualClock) -> None:
    store = EmbeddedStore(store_data_dir)
    store.close()
    authenticator = auth.Authenticator(store, clock, 60)
    with pytest.raises(StoreError) as caught:
        authenticator.authenticate(bearer("any-key"))
    assert not isinstance(caught.value, AuthenticationError)


# --- the dev key -----------------------------------------------------------------------


def test_dev_key_provisioning_is_idempotent(
    embedded_store: EmbeddedStore, counting: CountingStore, clock: ManualClock
) -> None:
    first = auth.provision_dev_key(embedded_store, "dev-secret-1", "dev", "master", clock=clock)
    assert first.key_id == auth.hash_key("dev-secret-1")[:16]
    assert (first.user, first.tier, first.revoked) == ("dev", "master", False)
    assert counting.writes == 1

    clock.advance(3600)
    again = auth.provision_dev_key(embedded_store, "dev-secret-1", "dev", "master", clock=clock)

    assert again == first
    assert counting.writes == 1
    assert embedded_store.list_keys("dev") == [first]


def test_dev_key_reprovisioned_with_another_tier_changes_only_the_tier(
    embedded_store: EmbeddedStore, clock: ManualClock
) -> None:
    first = auth.provision_dev_key(embedded_store, "dev-secret-2", "dev", "master", clock=clock)
    authenticator = auth.Authenticator(embedded_store, clock, cache_seconds=60)
    assert authenticator.authenticate(bearer("dev-secret-2")).tier == "master"

    clock.advance(3600)
    changed = auth.provision_dev_key(embedded_store, "dev-secret-2", "dev", "free", clock=clock)

    assert changed.tier == "free"
    assert (changed.key_id, changed.created_at) == (first.key_id, first.created_at)
    assert embedded_store.list_keys("dev") == [changed]
    assert authenticator.authenticate(bearer("dev-secret-2")).tier == "free"  # cache expired


def test_provisioning_reactivates_a_revoked_dev_key(
    embedded_store: EmbeddedStore, clock: ManualClock
) -> None:
    record = auth.provision_dev_key(embedded_store, "dev-secret-3", "dev", "pro", clock=clock)
    auth.revoke(embedded_store, record.key_id)

    again = auth.provision_dev_key(embedded_store, "dev-secret-3", "dev", "pro", clock=clock)

    assert not again.revoked
    authenticator = auth.Authenticator(embedded_store, clock, 60)
    assert authenticator.authenticate(bearer("dev-secret-3")) == again


@pytest.mark.parametrize("key", ["", "has space", "tab\tkey", "k" * (auth.MAX_KEY_LENGTH + 1)])
def test_dev_key_that_could_never_authenticate_is_refused(
    embedded_store: EmbeddedStore, key: str
) -> None:
    with pytest.raises(ValueError, match="dev API key"):
        auth.provision_dev_key(embedded_store, key, "dev", "master")
    assert embedded_store.list_keys("dev") == []
