"""The route_suggest function: a thin Powertools handler over `baton.api.route_suggest`."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from baton.api.lifecycle import init_container
from baton.api.logging import logger
from baton.api.route_suggest import app

init_container()


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
