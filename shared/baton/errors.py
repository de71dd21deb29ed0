"""Baton's one error hierarchy, and its mapping to OpenAI's error body.

::

    BatonError                      -> status, OpenAI "type", "code"
    ├── InvalidRequestError         400 invalid_request_error
    │   └── UnsupportedParameterError  400 (a field the provider cannot honour)
    ├── AuthenticationError         401 authentication_error
    ├── PermissionDeniedError       403 permission_error
    ├── NotFoundError               404 not_found_error (unknown model, route)
    ├── MethodNotAllowedError       405 invalid_request_error
    ├── PayloadTooLargeError        413 invalid_request_error
    ├── BudgetExceededError         402 insufficient_quota (code budget_exceeded)
    ├── RateLimitError              429 rate_limit_error (+ retry-after)
    ├── NotImplementedYetError      501 not_implemented
    └── UpstreamError               502 upstream_error (a provider failed)
        ├── UpstreamUnavailableError   503 (provider overloaded or unreachable)
        └── UpstreamTimeoutError       504 (deadline reached)

Foreign exceptions (SDK errors, pydantic errors) are translated once, at the boundary
that catches them, with ``raise ... from exc``. Anything else reaching an entry point
becomes a generic 500 body without a traceback (see ``baton.api.errors``).
"""

from __future__ import annotations

from typing import Any


class BatonError(Exception):
    """Base of every error Baton answers with; carries its HTTP status and body."""

    status: int = 500
    type: str = "server_error"
    default_code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code or self.default_code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """OpenAI's ``ErrorResponse`` shape."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequestError(BatonError):
    status = 400
    type = "invalid_request_error"


class UnsupportedParameterError(InvalidRequestError):
    default_code = "unsupported_parameter"


class AuthenticationError(BatonError):
    status = 401
    type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDeniedError(BatonError):
    status = 403
    type = "permission_error"
    default_code = "model_not_allowed"


class NotFoundError(BatonError):
    status = 404
    type = "not_found_error"
    default_code = "model_not_found"


class MethodNotAllowedError(BatonError):
    status = 405
    type = "invalid_request_error"
    default_code = "method_not_allowed"


class PayloadTooLargeError(BatonError):
    status = 413
    type = "invalid_request_error"
    default_code = "request_too_large"


class BudgetExceededError(BatonError):
    """402, not 429: SDKs retry 429s, and retrying a spent budget cannot help."""

    status = 402
    type = "insufficient_quota"
    default_code = "budget_exceeded"


class RateLimitError(BatonError):
    status = 429
    type = "rate_limit_error"
    default_code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        self.headers.setdefault("retry-after", str(max(1, round(retry_after))))


class NotImplementedYetError(BatonError):
    status = 501
    type = "not_implemented"
    default_code = "not_implemented"


class UpstreamError(BatonError):
    """A provider failed in a way the caller cannot fix by changing the request."""

    status = 502
    type = "upstream_error"
    default_code = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        upstream_status: int | None = None,
        retry_after: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.provider = provider
        self.upstream_status = upstream_status
        self.retry_after = retry_after


class UpstreamUnavailableError(UpstreamError):
    status = 503
    default_code = "upstream_unavailable"


class UpstreamTimeoutError(UpstreamError):
    status = 504
    type = "timeout_error"
    default_code = "deadline_exceeded"


def internal_error_body() -> dict[str, Any]:
    """The body for an unexpected failure: no traceback, no internals."""
    return {
        "error": {
            "message": "Internal error in Baton; the request id identifies it in the logs.",
            "type": "server_error",
            "param": None,
            "code": "internal_error",
        }
    }
