"""One contract suite for every store backend (design decision 3).

Every test taking the ``store`` fixture runs once against the embedded SQLite store and
once against DynamoDB (moto). Backend-specific behaviour (persistence across re-opening,
DynamoDB's expression limit, translating driver failures) is tested at the end.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from baton.store import (
    ApiKeyRecord,
    KeyOverrides,
    Store,
    StoreError,
    StoreUnavailableError,
)
from baton.store.base import MAX_COUNTERS_PER_UPDATE
from baton.store.dynamodb import DynamoDBStore, add_expression
from baton.store.embedded import EmbeddedStore
from tests.plugins.store import KEYS_TABLE, USAGE_TABLE

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def make_record(user: str = "alice", **changes: Any) -> ApiKeyRecord:
    """A valid record with a random hash and id, changed as asked."""
    fields: dict[str, Any] = {
        "key_id": uuid.uuid4().hex[:16],
        "key_hash": uuid.uuid4().hex + uuid.uuid4().hex,
        "user": user,
        "tier": "pro",
        "created_at": T0,
    }
    fields.update(changes)
    return ApiKeyRecord(**fields)


# --- API keys ---------------------------------------------------------------------------


def test_put_then_get_round_trips_every_field(store: Store) -> None:
    record = make_record(
        overrides=KeyOverrides(
            requests_per_minute=30,
            tokens_per_minute=50_000,
            monthly_budget_usd=Decimal("12.50"),
            allowed_models=["openai/gpt-4o-mini", "simulated/echo"],
        )
    )
    store.put_key(record)

    loaded = store.get_key_by_hash(record.key_hash)

    assert loaded == record
    assert loaded is not None
    assert loaded.overrides.monthly_budget_micro_usd == 12_500_000
    assert not loaded.revoked


def test_unknown_hash_is_none(store: Store) -> None:
    assert store.get_key_by_hash("0" * 64) is None


def test_put_is_an_idempotent_upsert_by_hash(store: Store) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    record = make_record(user)
    store.put_key(record)
    store.put_key(record)
    assert store.list_keys(user) == [record]

    upgraded = record.model_copy(update={"tier": "expert"})
    store.put_key(upgraded)

    assert store.get_key_by_hash(record.key_hash) == upgraded
    assert store.list_keys(user) == [upgraded]


def test_revoke_marks_the_key_and_keeps_the_first_revocation_time(store: Store) -> None:
    record = make_record()
    store.put_key(record)

    assert store.revoke_key(record.key_id) is True
    first = store.get_key_by_hash(record.key_hash)
    assert first is not None and first.revoked_at is not None
    assert abs(first.revoked_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert first.model_copy(update={"revoked_at": None}) == record

    # The store's clock has moved on (microseconds), yet the first time stays.
    assert store.revoke_key(record.key_id) is True
    again = store.get_key_by_hash(record.key_hash)
    assert again is not None and again.revoked_at == first.revoked_at


def test_revoking_an_unknown_key_id_is_false(store: Store) -> None:
    assert store.revoke_key("nosuchkeyid") is False


def test_list_keys_returns_only_that_users_keys_oldest_first(store: Store) -> None:
    user, other = f"u-{uuid.uuid4().hex[:8]}", f"u-{uuid.uuid4().hex[:8]}"
    newer = make_record(user, created_at=T0 + timedelta(hours=1))
    older = make_record(user, created_at=T0)
    revoked = make_record(user, created_at=T0 + timedelta(hours=2))
    for record in (newer, older, revoked, make_record(other)):
        store.put_key(record)
    store.revoke_key(revoked.key_id)

    listed = store.list_keys(user)

    assert [record.key_id for record in listed] == [older.key_id, newer.key_id, revoked.key_id]
    assert listed[2].revoked
    assert store.list_keys(f"nobody-{uuid.uuid4().hex[:8]}") == []


# --- aggregates -------------------------------------------------------------------------


def test_add_creates_the_row_then_adds(store: Store) -> None:
    partition = f"user#{uuid.uuid4().hex}"
    store.add_counters(partition, "day#2025-03-01", {"requests": 1, "cost_micro_usd": 250})
    store.add_counters(partition, "day#2025-03-01", {"requests": 2, "tokens": 7})
    store.add_counters(partition, "day#2025-03-01", {"cost_micro_usd": -50})

    assert store.get_row(partition, "day#2025-03-01") == {
        "requests": 3,
        "cost_micro_usd": 200,
        "tokens": 7,
    }


def test_missing_row_is_none(store: Store) -> None:
    partition = f"user#{uuid.uuid4().hex}"
    store.add_counters(partition, "day#2025-03-01", {"requests": 1})
    assert store.get_row(partition, "day#2025-03-02") is None
    assert store.get_row(f"user#{uuid.uuid4().hex}", "day#2025-03-01") is None


def test_empty_add_changes_nothing(store: Store) -> None:
    partition = f"user#{uuid.uuid4().hex}"
    store.add_counters(partition, "day", {})
    assert store.get_row(partition, "day") is None


def test_concurrent_adds_from_many_threads_give_exact_totals(store: Store) -> None:
    partition = f"user#{uuid.uuid4().hex}"
    threads, adds_per_thread = 8, 25
    start = threading.Barrier(threads)

    def worker(index: int) -> None:
        start.wait()
        for _ in range(adds_per_thread):
            store.add_counters(partition, "month#2025-03", {"requests": 1, f"t{index}": 3})

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))

    row = store.get_row(partition, "month#2025-03")
    assert row is not None
    assert row["requests"] == threads * adds_per_thread
    assert all(row[f"t{index}"] == 3 * adds_per_thread for index in range(threads))


def test_a_wide_update_applies_whole(store: Store) -> None:
    partition = f"user#{uuid.uuid4().hex}"
    # Wide enough to need multi-character placeholders; the full MAX_COUNTERS_PER_UPDATE
    # is checked against DynamoDB's expression limit below (moto takes ~20 s for it).
    counters = {f"latency_bucket_{index:04d}": index for index in range(100)}
    store.add_counters(partition, "day", counters)
    store.add_counters(partition, "day", counters)
    assert store.get_row(partition, "day") == {name: 2 * v for name, v in counters.items()}


@pytest.mark.parametrize(
    "counters",
    [
        {"pk": 1},
        {"sk": 1},
        {"": 1},
        {"has space": 1},
        {"requests": True},
        {"requests": 1.5},
        {"requests": 2**63},
        {f"c{index}": 1 for index in range(MAX_COUNTERS_PER_UPDATE + 1)},
    ],
    ids=["pk", "sk", "empty", "space", "bool", "float", "overflow", "too-many"],
)
def test_invalid_counters_are_refused_before_any_write(
    store: Store, counters: dict[str, Any]
) -> None:
    partition = f"user#{uuid.uuid4().hex}"
    with pytest.raises(ValueError):
        store.add_counters(partition, "day", counters)
    assert store.get_row(partition, "day") is None


def test_empty_partition_or_sort_is_refused(store: Store) -> None:
    with pytest.raises(ValueError):
        store.add_counters("", "day", {"requests": 1})
    with pytest.raises(ValueError):
        store.get_row("user#x", "")
    with pytest.raises(ValueError):
        store.delete_partition("")


def test_query_by_sort_prefix_in_sort_order(store: Store) -> None:
    partition = f"user#{uuid.uuid4().hex}"
    for sort in ("month#2025-03", "day#2025-03-02", "day#2025-03-01", "dayz"):
        store.add_counters(partition, sort, {"requests": len(sort)})
    # A partition whose name extends this one must not leak in.
    store.add_counters(partition + "0", "day#2025-03-01", {"requests": 99})

    days = store.query_rows(partition, "day#")

    assert [(row.sort, row.counters) for row in days] == [
        ("day#2025-03-01", {"requests": 14}),
        ("day#2025-03-02", {"requests": 14}),
    ]
    assert [row.sort for row in store.query_rows(partition)] == [
        "day#2025-03-01",
        "day#2025-03-02",
        "dayz",
        "month#2025-03",
    ]
    assert store.query_rows(partition, "week#") == []


def test_delete_partition_removes_only_that_partition(store: Store) -> None:
    partition, kept = f"user#{uuid.uuid4().hex}", f"user#{uuid.uuid4().hex}"
    for index in range(30):  # more than one DynamoDB batch of 25
        store.add_counters(partition, f"day#{index:02d}", {"requests": 1, "tokens": 2})
    store.add_counters(kept, "day#00", {"requests": 5})

    assert store.delete_partition(partition) == 30

    assert store.query_rows(partition) == []
    assert store.get_row(partition, "day#00") is None
    assert store.get_row(kept, "day#00") == {"requests": 5}
    assert store.delete_partition(partition) == 0


def test_ping_reports_a_latency(store: Store) -> None:
    assert store.ping() >= 0.0


# --- embedded backend -----------------------------------------------------------------


def test_embedded_store_survives_reopening(store_data_dir: Path) -> None:
    record = make_record()
    first = EmbeddedStore(store_data_dir)
    first.put_key(record)
    first.add_counters("user#alice", "day", {"requests": 2})
    first.revoke_key(record.key_id)
    first.close()

    reopened = EmbeddedStore(store_data_dir)
    try:
        loaded = reopened.get_key_by_hash(record.key_hash)
        assert loaded is not None and loaded.revoked
        assert reopened.get_row("user#alice", "day") == {"requests": 2}
    finally:
        reopened.close()


def test_embedded_stores_sharing_a_file_add_up(store_data_dir: Path) -> None:
    """Separate connections on one file behave like separate processes (WAL)."""
    stores = [EmbeddedStore(store_data_dir) for _ in range(3)]
    try:

        def worker(store: EmbeddedStore) -> None:
            for _ in range(40):
                store.add_counters("user#shared", "day", {"requests": 1})

        with ThreadPoolExecutor(len(stores)) as pool:
            list(pool.map(worker, stores))

        assert all(store.get_row("user#shared", "day") == {"requests": 120} for store in stores)
    finally:
        for store in stores:
            store.close()


def test_embedded_store_in_an_unusable_folder_is_unavailable(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    with pytest.raises(StoreUnavailableError, match="embedded store failed during open"):
        EmbeddedStore(not_a_folder)


def test_a_closed_embedded_store_raises_a_store_error(store_data_dir: Path) -> None:
    store = EmbeddedStore(store_data_dir)
    store.close()
    with pytest.raises(StoreError, match="get_key_by_hash"):
        store.get_key_by_hash("a" * 64)


# --- DynamoDB backend ----------------------------------------------------------------


def test_dynamodb_counter_update_is_one_top_level_add_within_the_expression_limit() -> None:
    counters = {f"{'n' * 200}{index}": index for index in range(MAX_COUNTERS_PER_UPDATE)}

    expression, names, values = add_expression(counters)

    assert len(expression.encode()) <= 4096  # DynamoDB's expression size limit
    assert expression.startswith("ADD ") and "." not in expression  # top-level only
    clauses = expression.removeprefix("ADD ").split(", ")
    assert len(clauses) == MAX_COUNTERS_PER_UPDATE
    assert {
        names[name_tag]: int(values[value_tag]["N"])
        for name_tag, value_tag in (clause.split(" ") for clause in clauses)
    } == counters


def test_dynamodb_missing_table_is_unavailable_and_names_no_key(dynamodb_client: Any) -> None:
    store = DynamoDBStore("no-such-table", "no-such-usage", client=dynamodb_client)
    key_hash = "b" * 64
    with pytest.raises(StoreUnavailableError) as caught:
        store.get_key_by_hash(key_hash)
    assert "ResourceNotFoundException" in caught.value.message
    assert key_hash not in caught.value.message
    assert caught.value.status == 503
    with pytest.raises(StoreUnavailableError):
        store.ping()


def test_unreachable_dynamodb_is_unavailable(aws_credentials: None) -> None:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",  # discard port: nothing listens
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    store = DynamoDBStore(KEYS_TABLE, USAGE_TABLE, client=client)
    with pytest.raises(StoreUnavailableError, match="during ping"):
        store.ping()
