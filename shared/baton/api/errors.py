"""Turning any failure into OpenAI's error body, for both kinds of entry point.

Validation errors from pydantic (FastAPI's and Powertools' own, which both answer 422
by default) become 400s through :func:`baton.errors.validation_error`. Anything
unexpected becomes a 500 body without a traceback; the traceback goes to the log with
the request id.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from baton.errors import BatonError, internal_error_body

logger = Logger(service="baton", child=True)


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
