"""The deadline of a request at an entry point (the smaller of the platform's remaining
time and the entry point's own limit, minus a margin)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from baton.clock import Clock, Deadline

# Time kept back to answer a clean 504 before the platform cuts the request.
RESPONSE_MARGIN_S = 1.0


def platform_remaining_s(scope: Mapping[str, Any], clock: Clock) -> float | None:
    """Seconds Lambda still grants this invocation, when the platform tells us.

    Mangum puts the Lambda context in the ASGI scope; Lambda Web Adapter forwards it
    as the ``x-amzn-lambda-context`` header, whose ``deadline`` is epoch milliseconds.
    Locally neither is present.
    """
    context = scope.get("aws.context")
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        return float(context.get_remaining_time_in_millis()) / 1000
    for name, value in scope.get("headers", ()):
        if name == b"x-amzn-lambda-context":
            try:
                deadline_ms = float(json.loads(value)["deadline"])
            except (ValueError, KeyError, TypeError):
                return None
            return deadline_ms / 1000 - clock.time()
    return None


def request_deadline(
    clock: Clock, entry_limit_s: float, platform_s: float | None, requested_s: float | None
) -> Deadline:
    """The tightest of the entry point's limit, the platform's time and the caller's."""
    candidates = [entry_limit_s]
    if platform_s is not None:
        candidates.append(platform_s - RESPONSE_MARGIN_S)
    if requested_s is not None:
        candidates.append(requested_s)
    return Deadline(clock, max(0.0, min(candidates)))
