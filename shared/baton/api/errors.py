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


def validation_error(errors: Sequence[Any]) -> InvalidRequestError:
    """A 400 describing pydantic's first error (and how many more there are)."""
    if not errors:
        return InvalidRequestError("The request body is not valid.")
    first = errors[0]
    location = [str(part) for part in first.get("loc", ()) if part not in ("body",)]
    kind = first.get("type", "")
    if kind == "json_invalid":
        return InvalidRequestError(
            "The request body is not valid JSON: "
            f"{first.get('ctx', {}).get('error', 'could not parse it')}.",
            code="invalid_json",
        )
    if kind == "missing" and not location:
        return InvalidRequestError("The request body is missing; send a JSON object.")
    param = ".".join(location) or None
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
