"""The Redis key schema: the keys one script touches share a cluster slot, whatever the ids."""

from __future__ import annotations

import re
from datetime import date

import pytest
from redis.crc import key_slot

from baton.kv import keys
from baton.kv.exceptions import CrossSlotError
from baton.kv.scripts import check_same_slot

DAY = date(2026, 11, 26)
AWKWARD_IDS = [
    "alice",
    "a:b",
    "x{y}z",
    "}",
    "{",
    "{}",
    "}{",
    "50%",
    "a%3Ab",  # what "a:b" escapes to: must stay a different id
    "openai/gpt-5.4-mini",
    "ünïcødé user",
    "tab\tand\nnewline",
]


def slot(key: str) -> int:
    return key_slot(key.encode())


def hash_tag(key: str) -> str:
    """What Redis hashes: the text between the first ``{`` and the first ``}`` after it."""
    start = key.index("{")
    return key[start + 1 : key.index("}", start + 1)]


def tenant_keys(tenant: str) -> list[str]:
    return [
        keys.usage_key(tenant, "day", DAY),
        keys.usage_key(tenant, "month", DAY),
        keys.usage_dirty_key(tenant),
        keys.rate_limit_key(tenant, "requests"),
        keys.rate_limit_key(tenant, "tokens", model="anthropic/claude:{x}"),
        keys.budget_key(tenant, DAY),
        keys.cache_key("f1ngerprint", tenant=tenant),
        keys.dedup_key(tenant, "f1ngerprint"),
    ]


def test_the_documented_examples() -> None:
    assert keys.usage_key("alice", "day", DAY) == "baton:{t:alice}:usage:d:2026-11-26"
    assert keys.usage_key("alice", "month", DAY) == "baton:{t:alice}:usage:m:2026-11"
    assert keys.breaker_key("openai/gpt-5.4-mini") == "baton:{cb:openai/gpt-5.4-mini}:state"
    assert keys.usage_index_key(DAY) == "baton:{usage-index}:d:2026-11-26"


@pytest.mark.parametrize("tenant", AWKWARD_IDS)
def test_every_key_of_a_tenant_shares_the_tenant_slot(tenant: str) -> None:
    tenant_slot = slot(keys.tenant_tag(tenant))

    for key in tenant_keys(tenant):
        assert key.startswith("baton:{t:")
        assert hash_tag(key) == "t:" + keys.escape(tenant), key
        assert slot(key) == tenant_slot, key
    check_same_slot(tenant_keys(tenant))


@pytest.mark.parametrize("model", AWKWARD_IDS)
def test_a_breaker_and_its_health_window_share_a_slot(model: str) -> None:
    state, health = keys.breaker_key(model), keys.health_key(model)

    assert hash_tag(state) == hash_tag(health) == "cb:" + keys.escape(model)
    assert slot(state) == slot(health)


@pytest.mark.parametrize("value", AWKWARD_IDS)
def test_escaping_leaves_no_separator_or_brace_and_round_trips(value: str) -> None:
    escaped = keys.escape(value)

    assert not set(escaped) & set(":{} \t\n")
    assert re.fullmatch(r"([^%]|%[0-9A-F]{2})*", escaped)  # a "%" only ever starts an escape
    assert keys.unescape(escaped) == value


def test_distinct_ids_give_distinct_keys() -> None:
    built = {keys.usage_key(tenant, "day", DAY) for tenant in AWKWARD_IDS}

    assert len(built) == len(AWKWARD_IDS)


def test_a_shared_cache_entry_is_tagged_by_itself() -> None:
    first = keys.cache_key("aaa", tenant=None)
    second = keys.cache_key("bbb", tenant=None)

    assert (hash_tag(first), hash_tag(second)) == ("cache:aaa", "cache:bbb")
    assert keys.cache_key("aaa", tenant="alice") != first


def test_an_empty_id_is_refused() -> None:
    with pytest.raises(ValueError, match="empty id"):
        keys.tenant_tag("")
    with pytest.raises(ValueError, match="empty id"):
        keys.rate_limit_key("alice", "requests", model="")


def test_the_slot_guard_names_the_keys_of_different_slots() -> None:
    alice, bob = keys.usage_dirty_key("alice"), keys.usage_dirty_key("bob")
    assert slot(alice) != slot(bob)

    with pytest.raises(CrossSlotError, match="span slots") as raised:
        check_same_slot([keys.usage_key("alice", "day", DAY), bob])
    assert bob in str(raised.value)
    check_same_slot([])
    check_same_slot([alice])
