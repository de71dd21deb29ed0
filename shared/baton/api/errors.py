"""Turning any failure into OpenAI's error body, for both kinds of entry point.

Validation errors from pydantic (FastAPI's and Powertools' own, which both answer 422
by default) become 400s with the first problem spelled out and its field in ``param``,
as OpenAI does. Anything unexpected becomes a 500 body without a traceback; the
traceback goes to the log with the request id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools import Logger

from baton.errors import BatonError, InvalidRequestError, internal_error_body

logger = Logger(service="baton", child=True)


# Pydantic names the member of a tagged union in an error's location ("messages", 0,
# "user", "content"); OpenAI's param is "messages[0].content". These are the tags.
_UNION_TAGS = frozenset(
    {"system", "developer", "user", "assistant", "tool", "function"}
    | {"text", "image_url", "input_audio", "file", "refusal"}
)
_TAGGED_LISTS = frozenset({"messages", "content"})
_TYPE_NAMES = frozenset({"str", "int", "float", "bool", "list", "dict"})


def openai_param(location: Sequence[Any]) -> str | None:
    """Pydantic's error location as OpenAI writes a ``param``: ``messages[0].content``."""
    parts: list[str] = []
    kept: list[Any] = []  # the location without type names; a dropped tag leaves None
    for part in location:
        if part == "body" and not kept:
            continue
        if isinstance(part, str) and ("[" in part or part in _TYPE_NAMES):
            continue  # pydantic names the union member's type; not a field
        if isinstance(part, int):
            if parts:
                parts[-1] += f"[{part}]"
        elif len(kept) >= 2 and isinstance(kept[-1], int) and kept[-2] in _TAGGED_LISTS:
            if part in _UNION_TAGS:
                kept.append(None)
                continue
            parts.append(part)
        else:
            parts.append(str(part))
        kept.append(part)
    return ".".join(parts) or None


def validation_error(errors: Sequence[Any]) -> InvalidRequestError:
    """A 400 describing pydantic's first error (and how many more there are)."""
    if not errors:
        return InvalidRequestError("The request body is not valid.")
    first = errors[0]
    param = openai_param(first.get("loc", ()))
    kind = first.get("type", "")
    if kind == "json_invalid":
        return InvalidRequestError(
            "The request body is not valid JSON: "
            f"{first.get('ctx', {}).get('error', 'could not parse it')}.",
            code="invalid_json",
        )
    if kind == "missing" and param is None:
        return InvalidRequestError("The request body is missing; send a JSON object.")
    message = first.get("msg", "invalid value")
    if kind == "extra_forbidden":
        message = "Unrecognized request argument supplied"
    more = f" ({len(errors) - 1} more problems)" if len(errors) > 1 else ""
    where = f"'{param}'" if param else "the request body"
    return InvalidRequestError(f"Invalid value for {where}: {message}{more}.", param=param)


def error_response_parts(
    exc: BaseException, request_id: str
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, body, headers) for ``exc``; logs unexpected ones with their traceback."""
    headers = {"x-request-id": request_id}
    if isinstance(exc, BatonError):
        headers.update(exc.headers)
        return exc.status, exc.body(), headers
    logger.exception("unhandled error", extra={"request_id": request_id})
    return 500, internal_error_body(), headers
