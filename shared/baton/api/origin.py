"""The CloudFront front door: with ``BATON_ORIGIN_HEADER`` set, a request that reached
the Function URL directly (without CloudFront's secret header) gets a 403.

Only requests Lambda Web Adapter forwards from the platform are checked: they carry
the ``x-amzn-request-context`` header it adds to every invocation. The adapter's own
requests inside the sandbox (readiness check, SnapStart hooks) do not, and do not need
the secret.
"""

from __future__ import annotations

import hmac
import json
from functools import lru_cache

from starlette.types import ASGIApp, Receive, Scope, Send

from baton.config import Settings
from baton.errors import PermissionDeniedError

PLATFORM_HEADER = b"x-amzn-request-context"


@lru_cache(maxsize=1)
def _secret_from_parameter(name: str) -> str:
    from aws_lambda_powertools.utilities import parameters

    return str(parameters.get_secret(name, max_age=300))


def expected_secret(settings: Settings) -> str | None:
    if settings.origin_secret:
        return settings.origin_secret
    if settings.origin_secret_parameter:
        return _secret_from_parameter(settings.origin_secret_parameter)
    return None


class OriginGuard:
    """Refuses platform requests that lack CloudFront's origin header."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.header = (settings.origin_header or "").lower().encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.header:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        if PLATFORM_HEADER in headers:
            expected = expected_secret(self.settings) or ""
            given = headers.get(self.header, b"").decode("latin-1")
            if not expected or not hmac.compare_digest(given, expected):
                error = PermissionDeniedError(
                    "Call Baton through its CloudFront domain.", code="direct_access_denied"
                )
                body = json.dumps(error.body()).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": error.status,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
