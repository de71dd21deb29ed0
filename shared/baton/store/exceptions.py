"""The store's exceptions, one flat module (the Powertools idempotency layout).

::

    BatonError (baton.errors)
    └── StoreError                  500 server_error, code store_error
        └── StoreUnavailableError   503 server_error, code store_unavailable

Each backend translates its own driver's exceptions (botocore, sqlite3) into these once,
at the storage boundary, with ``raise ... from exc``, so callers (authentication, usage,
health) handle one vocabulary whatever the backend. They are Baton errors, so an
entry point that lets one escape still answers in OpenAI's error shape. Messages name
the backend and the operation, never a key, a key hash or a user.
"""

from __future__ import annotations

from baton.errors import BatonError


class StoreError(BatonError):
    """The store failed in a way retrying will not fix (a bug or a misconfiguration)."""

    status = 500
    type = "server_error"
    default_code = "store_error"


class StoreUnavailableError(StoreError):
    """The store could not be reached or refused the call; retrying later may work."""

    status = 503
    default_code = "store_unavailable"
