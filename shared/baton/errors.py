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

from collections.abc import Sequence
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
