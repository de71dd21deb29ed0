"""``GET /openapi.json``: one document for both entry points, generated from the code.

FastAPI describes the OpenAI endpoint; each Powertools resolver describes its routes.
Both frameworks document validation failures as 422, which Baton never answers: those
become 400 with OpenAI's error body, and every operation lists the 401 it can answer.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from baton import __version__

_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
_ERRORS = {
    "400": "Invalid request (bad JSON, a missing or invalid field).",
    "401": "Missing, malformed, unknown or revoked API key.",
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


@lru_cache(maxsize=1)
def merged_openapi() -> dict[str, Any]:
    from baton.api import health, route_suggest, usage
    from baton.api.openai_app import create_app

    documents: list[dict[str, Any]] = [create_app().openapi()]
    documents += [
        module.app.get_openapi_schema(title="Baton", version=__version__).model_dump(
            mode="json", by_alias=True, exclude_none=True
        )
        for module in (route_suggest, health, usage)
    ]
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Baton",
            "version": __version__,
            "description": "OpenAI-compatible AI gateway. Every error uses OpenAI's error "
            "shape; validation errors are 400, never 422.",
        },
        "paths": {},
        "components": {
            "schemas": {"ErrorResponse": _ERROR_SCHEMA},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
    for document in documents:
        for path, operations in document.get("paths", {}).items():
            merged["paths"].setdefault(path, {}).update(operations)
        for name, schema in document.get("components", {}).get("schemas", {}).items():
            merged["components"]["schemas"].setdefault(name, schema)
    for path, operations in merged["paths"].items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            for status, description in _ERRORS.items():
                if status == "401" and path == "/v2/health":
                    description = "A key was given and it is not valid."
                responses.setdefault(status, _error(description))
            if not (path == "/v2/health" and method == "get"):
                operation.setdefault("security", [{"bearer": []}])
    schemas = merged["components"]["schemas"]
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return merged
