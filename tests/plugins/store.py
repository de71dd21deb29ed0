"""Store fixtures: DynamoDB under moto, the embedded SQLite store, and both at once.

``create_tables`` declares the two tables exactly as ``template.yaml`` does (see the
docstring of :mod:`baton.store.dynamodb`), so any test needing DynamoDB (the aggregate
function, usage reports) builds the same schema.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from baton.store import Store
from baton.store.dynamodb import KEY_ID_INDEX, USER_INDEX, DynamoDBStore
from baton.store.embedded import EmbeddedStore

KEYS_TABLE = "baton-keys-test"
USAGE_TABLE = "baton-usage-test"
STORE_BACKENDS = ("embedded", "dynamodb")


def create_tables(client: Any, keys_table: str, usage_table: str) -> None:
    """Create the keys and usage tables with the template's schema."""
    client.create_table(
        TableName=keys_table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "key_hash", "AttributeType": "S"},
            {"AttributeName": "key_id", "AttributeType": "S"},
            {"AttributeName": "user", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "key_hash", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": KEY_ID_INDEX,
                "KeySchema": [{"AttributeName": "key_id", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
            {
                "IndexName": USER_INDEX,
                "KeySchema": [{"AttributeName": "user", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            },
        ],
    )
    client.create_table(
        TableName=usage_table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
    )


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region, so nothing can reach a real AWS account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)


class AtomicPerCallClient:
    """A moto client whose calls run one at a time, as DynamoDB applies each request.

    moto applies an ``UpdateItem`` as an unlocked read-modify-write in Python, so
    concurrent calls lose additions that DynamoDB would not. Serialising each call
    restores DynamoDB's per-request atomicity and nothing more: a store doing its own
    read-modify-write across two calls would still lose updates here, so the contract's
    concurrency test keeps its teeth.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name == "get_paginator" or not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return call


@pytest.fixture
def dynamodb_client(aws_credentials: None) -> Iterator[Any]:
    """A boto3 DynamoDB client inside moto, with Baton's two tables created."""
    import boto3
    from moto import mock_aws

    # moto deep-copies an update expression's syntax tree, which nests one level per
    # ADD clause; a full-size counter update needs more than Python's default 1000
    # frames. Real DynamoDB parses it fine; only the fake needs the headroom.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            create_tables(client, KEYS_TABLE, USAGE_TABLE)
            yield client
    finally:
        sys.setrecursionlimit(limit)


@pytest.fixture
def dynamodb_store(dynamodb_client: Any) -> DynamoDBStore:
    return DynamoDBStore(KEYS_TABLE, USAGE_TABLE, client=AtomicPerCallClient(dynamodb_client))


@pytest.fixture
def store_data_dir(tmp_path: Path) -> Path:
    return tmp_path / "baton-data"


@pytest.fixture
def embedded_store(store_data_dir: Path) -> Iterator[EmbeddedStore]:
    store = EmbeddedStore(store_data_dir)
    yield store
    store.close()


@pytest.fixture(params=STORE_BACKENDS)
def store(request: pytest.FixtureRequest) -> Store:
    """Each store backend in turn: the contract suite runs once per backend."""
    backend: Store = request.getfixturevalue(f"{request.param}_store")
    return backend
