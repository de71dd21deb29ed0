"""The store contract: API keys and usage aggregates, whatever holds them.

Laid out like Powertools' idempotency persistence layer: :class:`Store` owns the logic
(validation, record (de)serialisation, revocation rules, timing, error translation) and
each backend (:mod:`baton.store.dynamodb`, :mod:`baton.store.embedded`) fills in a few
storage calls, the ``_underscored`` abstract methods. One contract test suite runs
against every backend (design decision 3).

Two kinds of data live here:

* **API keys** (:class:`ApiKeyRecord`), addressed by the SHA-256 hex of the full key;
  the key itself is never stored (design decision 9). Secondary lookups by ``key_id``
  (revocation) and by ``user`` (listing) are indexes in every backend.
* **Aggregates**: rows addressed by ``(partition, sort)`` whose attributes are integer
  counters, changed only by atomic *add* (design decision 3: top-level number
  attributes, because DynamoDB's ``ADD`` on a nested map path fails when the parent map
  is missing). The scheduled aggregation writes them; usage reports read them.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal, NamedTuple, get_args

from pydantic import BaseModel, ConfigDict, Field

from baton.clock import Clock, SystemClock
from baton.store.exceptions import StoreError

Tier = Literal["free", "pro", "expert", "master"]
TIERS: tuple[Tier, ...] = get_args(Tier)

# A user is also the tenant id inside Redis keys, so it may not hold characters with a
# meaning there: braces (cluster hash tags), colons (key separators), whitespace.
USER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$"

# DynamoDB caps an UpdateExpression at 4 KB; with the short placeholders the DynamoDB
# backend uses, 400 counters fit in one atomic update. Every backend enforces the same
# cap so callers (the aggregation) split work identically whatever the store.
MAX_COUNTERS_PER_UPDATE = 400

# Counters are signed 64-bit in every backend (SQLite's INTEGER is the narrowest).
COUNTER_LIMIT = 2**63

# Counter names become attribute names beside the row's own key attributes.
RESERVED_COUNTER_NAMES = frozenset({"pk", "sk"})
_COUNTER_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,255}$")


class KeyOverrides(BaseModel):
    """Per-key exceptions to the tier's limits; ``None`` means "the tier decides"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    requests_per_minute: int | None = Field(default=None, gt=0)
    tokens_per_minute: int | None = Field(default=None, gt=0)
    # Decimal, not float: money is never a float (design decision 6).
    monthly_budget_usd: Decimal | None = Field(default=None, ge=0, allow_inf_nan=False)
    # Provider-qualified model ids; an empty list would allow nothing, so it is refused.
    allowed_models: list[str] | None = Field(default=None, min_length=1)

    @property
    def monthly_budget_micro_usd(self) -> int | None:
        """The budget in the integer micro-dollars accounting uses."""
        if self.monthly_budget_usd is None:
            return None
        return int(self.monthly_budget_usd * 1_000_000)


class ApiKeyRecord(BaseModel):
    """One API key as stored: its hash, never the key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    key_hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 hex of the key.")
    user: str = Field(pattern=USER_PATTERN)
    tier: Tier
    overrides: KeyOverrides = Field(default_factory=KeyOverrides)
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class AggregateRow(NamedTuple):
    """One aggregate row of a partition: its sort key and its counters."""

    sort: str
    counters: dict[str, int]


class Store(ABC):
    """API keys and aggregates; backends implement the ``_underscored`` storage calls.

    Every public method either succeeds or raises a :class:`~baton.store.exceptions.
    StoreError`: backends list their driver's exceptions in ``_driver_errors`` and
    classify them in :meth:`_translate`, and the base applies that at every call.
    """

    _driver_errors: ClassVar[tuple[type[Exception], ...]]

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock: Clock = clock or SystemClock()

    # --- API keys -------------------------------------------------------------------

    def put_key(self, record: ApiKeyRecord) -> None:
        """Create or replace the key stored under ``record.key_hash`` (idempotent)."""
        with self._translating("put_key"):
            self._put_key_item(_record_to_item(record))

    def get_key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        """The key with this hash, revoked or not; ``None`` when there is none."""
        with self._translating("get_key_by_hash"):
            item = self._get_key_item(key_hash)
        return None if item is None else ApiKeyRecord.model_validate(item)

    def revoke_key(self, key_id: str) -> bool:
        """Revoke the key with this id; ``False`` when no such key exists.

        Revoking twice keeps the first ``revoked_at``, so the audit trail says when the
        key really stopped being trusted.
        """
        revoked_at = datetime.fromtimestamp(self._clock.time(), UTC).isoformat()
        with self._translating("revoke_key"):
            key_hash = self._find_key_hash(key_id)
            return key_hash is not None and self._mark_revoked(key_hash, revoked_at)

    def list_keys(self, user: str) -> list[ApiKeyRecord]:
        """Every key of ``user``, revoked ones included, oldest first."""
        with self._translating("list_keys"):
            items = self._user_key_items(user)
        records = [ApiKeyRecord.model_validate(item) for item in items]
        return sorted(records, key=lambda record: (record.created_at, record.key_id))

    # --- aggregates -----------------------------------------------------------------

    def add_counters(self, partition: str, sort: str, counters: Mapping[str, int]) -> None:
        """Atomically add each value to its counter, creating the row and counters.

        All counters of one call change together or not at all; at most
        :data:`MAX_COUNTERS_PER_UPDATE` per call. An empty mapping changes nothing.
        """
        _check_row_key(partition, sort)
        _check_counters(counters)
        if counters:
            with self._translating("add_counters"):
                self._add_counters(partition, sort, dict(counters))

    def get_row(self, partition: str, sort: str) -> dict[str, int] | None:
        """The counters of one row; ``None`` when the row does not exist."""
        _check_row_key(partition, sort)
        with self._translating("get_row"):
            return self._get_row(partition, sort)

    def query_rows(self, partition: str, sort_prefix: str = "") -> list[AggregateRow]:
        """The rows of ``partition`` whose sort key starts with ``sort_prefix``, in
        sort-key order (code point order, the same as DynamoDB's byte order)."""
        _check_partition(partition)
        with self._translating("query_rows"):
            rows = self._query_rows(partition, sort_prefix)
        return sorted(rows, key=lambda row: row.sort)

    def delete_partition(self, partition: str) -> int:
        """Delete every row of ``partition``; returns how many there were."""
        _check_partition(partition)
        with self._translating("delete_partition"):
            return self._delete_partition(partition)

    # --- health -------------------------------------------------------------------------

    def ping(self) -> float:
        """Milliseconds one trivial read of each table took; raises when unreachable."""
        started = self._clock.monotonic()
        with self._translating("ping"):
            self._ping()
        return (self._clock.monotonic() - started) * 1000.0

    # --- what a backend implements ------------------------------------------------------

    @abstractmethod
    def _put_key_item(self, item: dict[str, Any]) -> None:
        """Write a key item (JSON-compatible, ``None`` fields left out) by key_hash."""

    @abstractmethod
    def _get_key_item(self, key_hash: str) -> dict[str, Any] | None:
        """Read a key item by hash, as written, after any earlier write has landed."""

    @abstractmethod
    def _find_key_hash(self, key_id: str) -> str | None:
        """The hash of the key with this id, through the key_id index."""

    @abstractmethod
    def _mark_revoked(self, key_hash: str, revoked_at: str) -> bool:
        """Set ``revoked_at`` unless already set; ``False`` if the row is gone."""

    @abstractmethod
    def _user_key_items(self, user: str) -> list[dict[str, Any]]:
        """Every key item of a user, through the user index, in any order."""

    @abstractmethod
    def _add_counters(self, partition: str, sort: str, counters: dict[str, int]) -> None:
        """Add the (validated, non-empty) counters atomically, creating what is missing."""

    @abstractmethod
    def _get_row(self, partition: str, sort: str) -> dict[str, int] | None:
        """The counters of one row, or ``None``."""

    @abstractmethod
    def _query_rows(self, partition: str, sort_prefix: str) -> list[AggregateRow]:
        """The rows of a partition with this sort-key prefix, in any order."""

    @abstractmethod
    def _delete_partition(self, partition: str) -> int:
        """Delete a partition's rows and count them."""

    @abstractmethod
    def _ping(self) -> None:
        """The cheapest call that proves both tables answer."""

    @abstractmethod
    def _translate(self, operation: str, exc: Exception) -> StoreError:
        """Classify one of ``_driver_errors`` as a store error (unavailable or not)."""

    @contextmanager
    def _translating(self, operation: str) -> Iterator[None]:
        try:
            yield
        except self._driver_errors as exc:
            raise self._translate(operation, exc) from exc


def _record_to_item(record: ApiKeyRecord) -> dict[str, Any]:
    """JSON-compatible and float-free (Decimal -> str), which both backends accept.

    ``None`` fields are left out so "not revoked" is an absent attribute, which
    DynamoDB's ``if_not_exists`` can test.
    """
    return record.model_dump(mode="json", exclude_none=True)


def _check_partition(partition: str) -> None:
    if not partition:
        raise ValueError("aggregate rows need a non-empty partition key")


def _check_row_key(partition: str, sort: str) -> None:
    _check_partition(partition)
    if not sort:
        raise ValueError("aggregate rows need a non-empty sort key")


def _check_counters(counters: Mapping[str, int]) -> None:
    if len(counters) > MAX_COUNTERS_PER_UPDATE:
        raise ValueError(
            f"at most {MAX_COUNTERS_PER_UPDATE} counters per update, got {len(counters)}"
        )
    for name, value in counters.items():
        if name in RESERVED_COUNTER_NAMES or not _COUNTER_NAME.match(name):
            raise ValueError(f"invalid counter name {name!r}")
        # bool is an int subclass; True as a count is always a bug.
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"counter {name!r} must be an int, got {type(value).__name__}")
        if not -COUNTER_LIMIT < value < COUNTER_LIMIT:
            raise ValueError(f"counter {name!r} is out of range")
