"""The embedded store: SQLite under ``Settings.data_dir``, for ``make run`` and tests.

SQLite ships with Python, persists across restarts, and in WAL mode lets several
processes (the server, ``baton keys`` in another terminal) share the file: readers never
block, writers queue behind a busy timeout. Within a process one connection serves every
thread behind a lock; the local server's handler threads only ever do point reads and
small writes, so serialising them costs nothing noticeable.

Semantics match DynamoDB's: a key item is stored whole (as JSON, with indexed copies of
``key_id`` and ``user``); each aggregate counter is one ``(pk, sk, name)`` row, so
``ADD`` is a single-statement upsert and a row "exists" while it has any counter.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from baton.clock import Clock
from baton.store.base import AggregateRow, Store
from baton.store.exceptions import StoreError, StoreUnavailableError

DB_FILE_NAME = "store.sqlite3"

# How long a write waits for another process's write transaction before failing.
_BUSY_TIMEOUT_S = 5.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    item TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS api_keys_by_key_id ON api_keys (key_id);
CREATE INDEX IF NOT EXISTS api_keys_by_user ON api_keys (user_name);
CREATE TABLE IF NOT EXISTS counters (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    name TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (pk, sk, name)
) WITHOUT ROWID;
"""


class EmbeddedStore(Store):
    """API keys and aggregates in one SQLite file."""

    # OSError: the data folder cannot be created.
    _driver_errors: ClassVar[tuple[type[Exception], ...]] = (sqlite3.Error, OSError)

    def __init__(self, data_dir: Path, *, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)
        self.path = data_dir / DB_FILE_NAME
        self._lock = threading.Lock()
        with self._translating("open"):
            data_dir.mkdir(parents=True, exist_ok=True)
            # Autocommit (isolation_level=None): transactions are explicit, below.
            self._db = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the file; the store is unusable afterwards."""
        with self._lock:
            self._db.close()

    # --- keys -----------------------------------------------------------------------

    def _put_key_item(self, item: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO api_keys (key_hash, key_id, user_name, item) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (key_hash) DO UPDATE SET key_id = excluded.key_id,"
                " user_name = excluded.user_name, item = excluded.item",
                (item["key_hash"], item["key_id"], item["user"], json.dumps(item)),
            )

    def _get_key_item(self, key_hash: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT item FROM api_keys WHERE key_hash = ?", (key_hash,)
            ).fetchone()
        return None if row is None else _load(row[0])

    def _find_key_hash(self, key_id: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT key_hash FROM api_keys WHERE key_id = ? LIMIT 1", (key_id,)
            ).fetchone()
        return None if row is None else str(row[0])

    def _mark_revoked(self, key_hash: str, revoked_at: str) -> bool:
        with self._transaction() as db:
            row = db.execute("SELECT item FROM api_keys WHERE key_hash = ?", (key_hash,)).fetchone()
            if row is None:
                return False
            item = _load(row[0])
            if "revoked_at" not in item:
                item["revoked_at"] = revoked_at
                db.execute(
                    "UPDATE api_keys SET item = ? WHERE key_hash = ?", (json.dumps(item), key_hash)
                )
            return True

    def _user_key_items(self, user: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT item FROM api_keys WHERE user_name = ?", (user,)
            ).fetchall()
        return [_load(row[0]) for row in rows]

    # --- aggregates -----------------------------------------------------------------

    def _add_counters(self, partition: str, sort: str, counters: dict[str, int]) -> None:
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO counters (pk, sk, name, value) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (pk, sk, name) DO UPDATE SET value = value + excluded.value",
                [(partition, sort, name, value) for name, value in counters.items()],
            )

    def _get_row(self, partition: str, sort: str) -> dict[str, int] | None:
        with self._lock:
            rows = self._db.execute(
                "SELECT name, value FROM counters WHERE pk = ? AND sk = ?", (partition, sort)
            ).fetchall()
        return {str(name): int(value) for name, value in rows} or None

    def _query_rows(self, partition: str, sort_prefix: str) -> list[AggregateRow]:
        with self._lock:
            rows = self._db.execute(
                # `sk >= prefix` lets the primary key index narrow the scan.
                "SELECT sk, name, value FROM counters"
                " WHERE pk = ? AND sk >= ? AND substr(sk, 1, ?) = ?",
                (partition, sort_prefix, len(sort_prefix), sort_prefix),
            ).fetchall()
        grouped: dict[str, dict[str, int]] = {}
        for sort, name, value in rows:
            grouped.setdefault(str(sort), {})[str(name)] = int(value)
        return [AggregateRow(sort, counters) for sort, counters in grouped.items()]

    def _delete_partition(self, partition: str) -> int:
        with self._transaction() as db:
            (count,) = db.execute(
                "SELECT COUNT(DISTINCT sk) FROM counters WHERE pk = ?", (partition,)
            ).fetchone()
            db.execute("DELETE FROM counters WHERE pk = ?", (partition,))
        return int(count)

    # --- health and errors ----------------------------------------------------------

    def _ping(self) -> None:
        with self._lock:
            self._db.execute("SELECT 1 FROM api_keys LIMIT 1").fetchall()
            self._db.execute("SELECT 1 FROM counters LIMIT 1").fetchall()

    def _translate(self, operation: str, exc: Exception) -> StoreError:
        message = f"embedded store failed during {operation} ({type(exc).__name__}: {exc})"
        # OperationalError covers a locked, unreadable or missing database file.
        if isinstance(exc, sqlite3.OperationalError | OSError):
            return StoreUnavailableError(message)
        return StoreError(message)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; IMMEDIATE takes the write lock up front, so two
        processes' read-modify-write cycles cannot interleave."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")


def _load(text: str) -> dict[str, Any]:
    item: dict[str, Any] = json.loads(text)
    return item
