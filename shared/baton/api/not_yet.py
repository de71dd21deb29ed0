"""Routes whose issues have not landed yet: authenticated, then a clear 501."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from baton.api.powertools import authenticate
from baton.errors import NotImplementedYetError


def not_implemented(app: APIGatewayHttpResolver, feature: str) -> Response[str]:
    authenticate(app)
    raise NotImplementedYetError(f"{feature}: not available yet on this deployment.")
