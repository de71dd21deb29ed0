"""Anthropic's failures in Baton's hierarchy, translated once (:func:`translate`).

An HTTP error status keeps its meaning through
:func:`~baton.providers.base.error_from_status`; an ``error`` event inside a stream that
started with HTTP 200 is given the status the same failure has before a stream starts,
so a mid-stream ``overloaded_error`` is as retryable as a 529. Timeouts come from the
SDK or from its transport, httpx2.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Final

import anthropic
import httpx2

from baton.errors import BatonError, UpstreamError, UpstreamTimeoutError
from baton.providers.base import error_from_status, is_context_length_message

PROVIDER: Final = "anthropic"

# An ``error`` event inside a stream arrives on an HTTP 200; its ``error.type`` says
# which status the same failure has before a stream starts.
ERROR_TYPE_STATUS: Final[Mapping[str, int]] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def translate(exc: Exception) -> BatonError:
    """One SDK or transport exception -> Baton's hierarchy (the only place this happens)."""
    if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
        return UpstreamTimeoutError(f"{PROVIDER}: the request timed out", provider=PROVIDER)
    if isinstance(exc, anthropic.APIStatusError):
        message = exc.api_message or f"HTTP {exc.status_code}"
        status = exc.status_code
        if status < 400:  # an error event inside a stream that started with 200
            status = ERROR_TYPE_STATUS.get(exc.type or "", 502)
        return error_from_status(
            PROVIDER,
            status,
            message,
            retry_after=retry_after_seconds(exc.response.headers),
            context_length=is_context_length_message(message),
        )
    if isinstance(exc, anthropic.APIResponseValidationError):
        return UpstreamError(
            f"{PROVIDER}: unexpected response shape",
            provider=PROVIDER,
            upstream_status=exc.status_code,
        )
    # Connection refused or reset, or a stream cut off midway.
    return error_from_status(PROVIDER, None, "connection failed or was interrupted")


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The ``retry-after`` header (seconds or an HTTP date) in seconds.

    Hand-rolled because the SDK's parser is private and tied to its own retry loop.
    """
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
