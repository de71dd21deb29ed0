"""Validation against OpenAI's published chat schemas (design decision 5).

The schemas come from ``tests/specs/openai-chat-schemas.json``, extracted from OpenAI's
spec by ``scripts/extract-openai-schemas.py`` so the suite needs nothing outside the repo.
The spec is OpenAPI 3.1, whose schema objects are JSON Schema 2020-12.
"""

from __future__ import annotations

import json
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMAS = Path(__file__).parent / "specs" / "openai-chat-schemas.json"
BASE = "urn:openai-spec"


@lru_cache(maxsize=1)
def _registry() -> Registry:
    document = json.loads(SCHEMAS.read_text())
    return Registry().with_resource(
        BASE, Resource.from_contents(document, default_specification=_spec())
    )


def _spec():  # type: ignore[no-untyped-def]
    from referencing.jsonschema import DRAFT202012

    return DRAFT202012


@cache
def _validator(schema_name: str) -> Draft202012Validator:
    schema = {"$ref": f"{BASE}#/components/schemas/{schema_name}"}
    return Draft202012Validator(schema, registry=_registry())


def assert_valid(schema_name: str, instance: dict[str, Any]) -> None:
    """Fail with every violation listed when ``instance`` breaks the named schema."""
    errors = sorted(_validator(schema_name).iter_errors(instance), key=lambda e: list(e.path))
    if errors:
        details = "\n".join(f"- {list(e.path)}: {e.message}" for e in errors[:10])
        raise AssertionError(f"{schema_name} violated:\n{details}")
