"""The HTTP API's handlers are Powertools resolvers; this module gives them all one
error behaviour and one way to authenticate.

Powertools answers its own validation errors with 422 and a body of its own; Baton
re-shapes them (and every other failure) into OpenAI's error body with the right
status (design decision 8).
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from baton.api.errors import error_response_parts
from baton.errors import NotFoundError, validation_error
from baton.runtime import get_runtime
from baton.store.base import ApiKeyRecord


def _request_id(app: APIGatewayHttpResolver) -> str:
    context = app.lambda_context
    request_id = getattr(context, "aws_request_id", None)
    return str(request_id or app.current_event.request_context.request_id)


def _response(app: APIGatewayHttpResolver, exc: BaseException) -> Response[str]:
    status, body, headers = error_response_parts(exc, _request_id(app))
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(body),
        headers=headers,
    )


def make_resolver() -> APIGatewayHttpResolver:
    """A resolver with validation on and every error in OpenAI's shape."""
    app = APIGatewayHttpResolver(enable_validation=True)

    @app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
    def _invalid(exc: RequestValidationError) -> Response[str]:
        return _response(app, validation_error(exc.errors()))

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def _any(exc: Exception) -> Response[str]:
        return _response(app, exc)

    @app.not_found
    def _not_found(exc: Exception) -> Response[str]:
        event = app.current_event
        return _response(
            app,
            NotFoundError(f"Unknown route {event.http_method} {event.path}.", code="unknown_route"),
        )

    return app


def authenticate(app: APIGatewayHttpResolver) -> ApiKeyRecord:
    """The caller's key record, or a 401 (raised, and shaped by the handlers above)."""
    header = app.current_event.headers.get("authorization")
    return get_runtime().authenticator.authenticate(header)


def json_response(
    app: APIGatewayHttpResolver, body: dict[str, Any], status: int = 200
) -> Response[str]:
    """A JSON response carrying the request id, like every response of the gateway."""
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(body),
        headers={"x-request-id": _request_id(app)},
    )
