"""The DynamoDB store: what runs on AWS.

Tables (the SAM template declares them exactly so; ``tests/plugins/store.py`` mirrors it):

* keys table (``Settings.keys_table``): partition key ``key_hash`` (S); global secondary
  index ``by_key_id`` on ``key_id`` (S), projection KEYS_ONLY (revocation needs only the
  hash); global secondary index ``by_user`` on ``user`` (S), projection ALL (listing).
* usage table (``Settings.usage_table``): partition key ``pk`` (S), sort key ``sk`` (S);
  every other attribute is a top-level number counter.

The low-level client is used rather than the resource API because clients are
thread-safe and resources are not, and the local server runs handlers in threads.
Reads by primary key are strongly consistent, so a key works the moment
``baton keys create`` returns; the ``key_id`` and ``user`` indexes are eventually
consistent (a key revoked within about a second of its creation may not be found yet).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from boto3.dynamodb.table import BatchWriter
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from baton.clock import Clock
from baton.store.base import AggregateRow, Store
from baton.store.exceptions import StoreError, StoreUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

KEY_ID_INDEX = "by_key_id"
USER_INDEX = "by_user"

# Error codes that mean "DynamoDB could not serve this now" rather than "this call is
# wrong"; the rest (validation, access denied) are bugs or misconfiguration.
_UNAVAILABLE_CODES = frozenset(
    {
        "InternalServerError",
        "LimitExceededException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "ResourceNotFoundException",
        "ServiceUnavailable",
        "ThrottlingException",
    }
)

# The auth path waits on key lookups, so a sick DynamoDB must fail fast, not after
# botocore's 60 s defaults; "standard" retries back off and retry throttling.
_CONNECT_TIMEOUT_S = 2.0
_READ_TIMEOUT_S = 5.0
_MAX_ATTEMPTS = 3

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class DynamoDBStore(Store):
    """API keys and aggregates in two DynamoDB tables."""

    _driver_errors: ClassVar[tuple[type[Exception], ...]] = (BotoCoreError, ClientError)

    def __init__(
        self,
        keys_table: str,
        usage_table: str,
        *,
        client: DynamoDBClient | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(clock=clock)
        self._keys_table = keys_table
        self._usage_table = usage_table
        self._client = client or _default_client()

    # --- keys -----------------------------------------------------------------------

    def _put_key_item(self, item: dict[str, Any]) -> None:
        self._client.put_item(TableName=self._keys_table, Item=_serialize(item))

    def _get_key_item(self, key_hash: str) -> dict[str, Any] | None:
        response = self._client.get_item(
            TableName=self._keys_table, Key={"key_hash": {"S": key_hash}}, ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else _deserialize(item)

    def _find_key_hash(self, key_id: str) -> str | None:
        response = self._client.query(
            TableName=self._keys_table,
            IndexName=KEY_ID_INDEX,
            KeyConditionExpression="key_id = :key_id",
            ExpressionAttributeValues={":key_id": {"S": key_id}},
            Limit=1,
        )
        items = response.get("Items", [])
        return items[0]["key_hash"]["S"] if items else None

    def _mark_revoked(self, key_hash: str, revoked_at: str) -> bool:
        try:
            self._client.update_item(
                TableName=self._keys_table,
                Key={"key_hash": {"S": key_hash}},
                UpdateExpression="SET revoked_at = if_not_exists(revoked_at, :at)",
                ConditionExpression="attribute_exists(key_hash)",
                ExpressionAttributeValues={":at": {"S": revoked_at}},
            )
        except ClientError as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _user_key_items(self, user: str) -> list[dict[str, Any]]:
        pages = self._client.get_paginator("query").paginate(
            TableName=self._keys_table,
            IndexName=USER_INDEX,
            KeyConditionExpression="#user = :user",
            # USER is a DynamoDB reserved word.
            ExpressionAttributeNames={"#user": "user"},
            ExpressionAttributeValues={":user": {"S": user}},
        )
        return [_deserialize(item) for page in pages for item in page.get("Items", [])]

    # --- aggregates -----------------------------------------------------------------

    def _add_counters(self, partition: str, sort: str, counters: dict[str, int]) -> None:
        expression, names, values = add_expression(counters)
        self._client.update_item(
            TableName=self._usage_table,
            Key=_row_key(partition, sort),
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def _get_row(self, partition: str, sort: str) -> dict[str, int] | None:
        response = self._client.get_item(
            TableName=self._usage_table, Key=_row_key(partition, sort), ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else _counters(item)

    def _query_rows(self, partition: str, sort_prefix: str) -> list[AggregateRow]:
        condition = "pk = :pk"
        values: dict[str, AttributeValueTypeDef] = {":pk": {"S": partition}}
        if sort_prefix:  # DynamoDB refuses an empty begins_with operand on a key.
            condition += " AND begins_with(sk, :prefix)"
            values[":prefix"] = {"S": sort_prefix}
        pages = self._client.get_paginator("query").paginate(
            TableName=self._usage_table,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ConsistentRead=True,
        )
        return [
            AggregateRow(item["sk"]["S"], _counters(item))
            for page in pages
            for item in page.get("Items", [])
        ]

    def _delete_partition(self, partition: str) -> int:
        pages = self._client.get_paginator("query").paginate(
            TableName=self._usage_table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": partition}},
            ProjectionExpression="pk, sk",
            ConsistentRead=True,
        )
        deleted = 0
        # boto3's BatchWriter batches by 25 and resends unprocessed items; given a plain
        # client it sends keys in wire format, which is what we build.
        with BatchWriter(self._usage_table, self._client) as writer:
            for page in pages:
                for item in page.get("Items", []):
                    writer.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
                    deleted += 1
        return deleted

    # --- health and errors ----------------------------------------------------------

    def _ping(self) -> None:
        # GetItem needs no permission beyond what serving already needs (unlike
        # DescribeTable), and proves both tables exist and answer.
        self._client.get_item(TableName=self._keys_table, Key={"key_hash": {"S": "ping"}})
        self._client.get_item(TableName=self._usage_table, Key=_row_key("ping", "ping"))

    def _translate(self, operation: str, exc: Exception) -> StoreError:
        code = _error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
        message = f"DynamoDB store failed during {operation} ({code})"
        if isinstance(exc, BotoCoreError) or code in _UNAVAILABLE_CODES:
            return StoreUnavailableError(message)
        return StoreError(message)


def _default_client() -> DynamoDBClient:
    # Imported here: only a DynamoDB-backed container pays for creating a client.
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=_CONNECT_TIMEOUT_S,
        read_timeout=_READ_TIMEOUT_S,
        retries={"mode": "standard", "max_attempts": _MAX_ATTEMPTS},
    )
    return boto3.client("dynamodb", config=config)


def add_expression(
    counters: dict[str, int],
) -> tuple[str, dict[str, str], dict[str, AttributeValueTypeDef]]:
    """``ADD #a :a, #b :b ...`` on top-level attributes, with its names and values.

    Placeholders are base-36 indexes, so MAX_COUNTERS_PER_UPDATE counters stay under
    DynamoDB's 4 KB expression limit whatever the counter names are.
    """
    tags = [_base36(index) for index in range(len(counters))]
    names = {f"#{tag}": name for tag, name in zip(tags, counters, strict=True)}
    values: dict[str, AttributeValueTypeDef] = {
        f":{tag}": {"N": str(value)} for tag, value in zip(tags, counters.values(), strict=True)
    }
    return "ADD " + ", ".join(f"#{tag} :{tag}" for tag in tags), names, values


def _row_key(partition: str, sort: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": {"S": partition}, "sk": {"S": sort}}


def _serialize(item: dict[str, Any]) -> dict[str, AttributeValueTypeDef]:
    return {name: _serializer.serialize(value) for name, value in item.items()}


def _deserialize(item: dict[str, Any]) -> dict[str, Any]:
    # Numbers come back as Decimal; pydantic turns integral ones back into int.
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def _counters(item: dict[str, Any]) -> dict[str, int]:
    return {name: int(value["N"]) for name, value in item.items() if name not in ("pk", "sk")}


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "ClientError"))


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, remainder = divmod(number, 36)
        text = digits[remainder] + text
        if number == 0:
            return text
