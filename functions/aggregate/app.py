"""The aggregate function: the EventBridge schedule.

It runs the active health probes when ``BATON_ACTIVE_PROBES`` is on. Moving Redis
counters into the store lands with the usage-aggregation issue; until then the answer
says that part is not implemented (501).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from baton.ai.probes import run_probes
from baton.api.lifecycle import init_container
from baton.api.logging import logger
from baton.kv.client import close_async_client
from baton.runtime import Runtime, get_runtime

init_container()


async def _probe(runtime: Runtime) -> list[dict[str, Any]]:
    try:
        return [asdict(result) for result in await run_probes(runtime)]
    finally:
        # This loop ends with the invocation: close what was opened in it.
        await runtime.registry.aclose()
        await close_async_client()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    runtime = get_runtime()
    probes = asyncio.run(_probe(runtime)) if runtime.settings.active_probes else []
    for probe in probes:
        logger.info("probe", extra=probe)
    logger.warning("aggregation is not implemented yet", extra={"event_id": event.get("id")})
    return {
        "status": 501,
        "message": "Usage aggregation is not implemented yet.",
        "probes": probes,
    }
