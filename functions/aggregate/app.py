"""The aggregate function: the EventBridge schedule that moves Redis counters into the
store. Until the usage-aggregation issue lands it reports that it did nothing."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from baton.api.logging import logger


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.warning("aggregation is not implemented yet", extra={"event_id": event.get("id")})
    return {"status": 501, "message": "Usage aggregation is not implemented yet."}
