"""Extracts the chat-completion schemas Baton is validated against from OpenAI's spec.

Run from the checkout with the team handbook beside it:
    .venv/bin/python scripts/extract-openai-schemas.py ../shared/specs/openai-openapi.yaml

It writes ``tests/specs/openai-chat-schemas.json``: the three schemas Baton's tests
validate against (DESIGN decision 5) and every schema they reference, so the test suite
passes in a clone without the handbook. The spec's MIT licence is copied beside it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOTS = ["CreateChatCompletionResponse", "CreateChatCompletionStreamResponse", "ErrorResponse"]
OUT = Path("tests/specs/openai-chat-schemas.json")


def refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[1])
        for value in node.values():
            found |= refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= refs(value)
    return found


def nullable_to_type(node: Any) -> Any:
    """Rewrites OpenAPI 3.0's ``nullable: true``, which the 3.1 spec still uses in places
    and JSON Schema ignores, into the ``null`` type it means (OpenAI does send nulls
    there, e.g. a stream chunk's ``finish_reason``)."""
    if isinstance(node, list):
        return [nullable_to_type(value) for value in node]
    if not isinstance(node, dict):
        return node
    node = {key: nullable_to_type(value) for key, value in node.items()}
    if node.pop("nullable", False):
        if isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        if "enum" in node:
            node["enum"] = [*node["enum"], None]
        if "$ref" in node or "allOf" in node or "anyOf" in node or "oneOf" in node:
            node = {"anyOf": [node, {"type": "null"}]}
    return node


def main(spec_path: str) -> None:
    spec = yaml.safe_load(Path(spec_path).read_text())
    schemas = spec["components"]["schemas"]
    keep: dict[str, Any] = {}
    todo = list(ROOTS)
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep[name] = schemas[name]
        todo.extend(refs(schemas[name]) - keep.keys())
    document = {
        "source": "OpenAI's published OpenAPI spec (openai-openapi.yaml), MIT licence: see "
        "openai-openapi.LICENSE",
        "openapi": spec["openapi"],
        "components": {"schemas": nullable_to_type(dict(sorted(keep.items())))},
    }
    OUT.write_text(json.dumps(document, indent=1) + "\n")
    licence = Path(spec_path).with_name("openai-openapi.LICENSE")
    OUT.with_name("openai-openapi.LICENSE").write_text(licence.read_text())
    print(f"wrote {OUT} with {len(keep)} schemas")


if __name__ == "__main__":
    main(sys.argv[1])
