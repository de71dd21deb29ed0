"""``baton keys create|revoke|list``: manage API keys in the configured store.

The store is ``get_store(get_settings())``, so the same command manages the embedded
store of ``make run`` (``BATON_DATA_DIR``) or the deployed DynamoDB table
(``BATON_STORE=dynamodb`` plus AWS credentials). A new key is printed once and never
again; ``list`` shows key ids, tiers and overrides, never keys or hashes.

Exit codes: 0 done, 1 no such key, 2 usage error (argparse's own code), 3 the store
failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from baton import auth
from baton.config import get_settings
from baton.store import TIERS, ApiKeyRecord, KeyOverrides, Store, StoreError, get_store

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_USAGE = 2
EXIT_STORE_FAILED = 3


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``keys`` and its subcommands to the ``baton`` parser."""
    keys = subparsers.add_parser("keys", help="create, revoke and list API keys")
    commands = keys.add_subparsers(dest="keys_command", required=True)

    create = commands.add_parser("create", help="mint a new key (printed once)")
    create.add_argument("--user", required=True, help="owner (tenant) of the key")
    create.add_argument("--tier", required=True, choices=TIERS)
    create.add_argument("--rpm", type=_positive_int, help="requests per minute override")
    create.add_argument("--tpm", type=_positive_int, help="tokens per minute override")
    create.add_argument(
        "--monthly-budget-usd", type=_budget, metavar="USD", help="monthly budget override"
    )
    create.add_argument(
        "--allowed-models",
        type=_model_list,
        metavar="MODELS",
        help="comma-separated model ids the key may use",
    )
    create.add_argument("--json", action="store_true", help="print JSON")
    create.set_defaults(func=_create)

    revoke = commands.add_parser("revoke", help="revoke a key by its key_id")
    revoke.add_argument("key_id")
    revoke.add_argument("--json", action="store_true", help="print JSON")
    revoke.set_defaults(func=_revoke)

    list_ = commands.add_parser("list", help="list a user's keys (never the keys)")
    list_.add_argument("--user", required=True)
    list_.add_argument("--json", action="store_true", help="print JSON")
    list_.set_defaults(func=_list)


def _create(args: argparse.Namespace) -> int:
    try:
        overrides = KeyOverrides(
            requests_per_minute=args.rpm,
            tokens_per_minute=args.tpm,
            monthly_budget_usd=args.monthly_budget_usd,
            allowed_models=args.allowed_models,
        )
        key, record = auth.create_key(_store(), args.user, args.tier, overrides)
    except ValidationError as exc:
        return _fail(EXIT_USAGE, _validation_message(exc))
    except StoreError as exc:
        return _fail(EXIT_STORE_FAILED, exc.message)
    if args.json:
        _print_json({"api_key": key, **_describe(record)})
    else:
        print(f"Created a {record.tier} key for user {record.user}.")
        print(f"key_id:  {record.key_id}")
        print(f"api_key: {key}")
        print("Store the key now: it is shown only this once.")
    return EXIT_OK


def _revoke(args: argparse.Namespace) -> int:
    try:
        revoked = auth.revoke(_store(), args.key_id)
    except StoreError as exc:
        return _fail(EXIT_STORE_FAILED, exc.message)
    if not revoked:
        return _fail(EXIT_NOT_FOUND, f"no key with key_id {args.key_id!r}")
    if args.json:
        _print_json({"key_id": args.key_id, "revoked": True})
    else:
        print(f"Revoked key {args.key_id}.")
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    try:
        records = _store().list_keys(args.user)
    except StoreError as exc:
        return _fail(EXIT_STORE_FAILED, exc.message)
    if args.json:
        _print_json([_describe(record) for record in records])
        return EXIT_OK
    if not records:
        print(f"User {args.user} has no keys.")
    for record in records:
        status = f"revoked {record.revoked_at:%Y-%m-%d}" if record.revoked_at else "active"
        overrides = record.overrides.model_dump(mode="json", exclude_none=True)
        extra = f"  overrides {json.dumps(overrides)}" if overrides else ""
        print(
            f"{record.key_id}  {record.tier:<6}  {status:<18}  "
            f"created {record.created_at:%Y-%m-%d %H:%M}{extra}"
        )
    return EXIT_OK


def _store() -> Store:
    return get_store(get_settings())


def _describe(record: ApiKeyRecord) -> dict[str, Any]:
    """Everything about a key that may be shown: no key, no hash."""
    return record.model_dump(mode="json", exclude={"key_hash"})


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2))


def _fail(code: int, message: str) -> int:
    print(f"baton keys: error: {message}", file=sys.stderr)
    return code


def _validation_message(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _budget(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not an amount in USD: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative amount: {text!r}")
    return value


def _model_list(text: str) -> list[str]:
    models = [model.strip() for model in text.split(",") if model.strip()]
    if not models:
        raise argparse.ArgumentTypeError("name at least one model")
    return models
