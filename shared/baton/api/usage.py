"""``GET /v2/usage``, ``GET /v2/usage/export``, ``DELETE /v2/usage`` (not yet built)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from baton.api.not_yet import not_implemented
from baton.api.powertools import make_resolver

app = make_resolver()


@app.get("/v2/usage", summary="The caller's usage for a day or month", tags=["Baton"])
def usage_report() -> Response[str]:
    return not_implemented(app, "Usage reports")


@app.get("/v2/usage/export", summary="Export the caller's usage (GDPR)", tags=["Baton"])
def usage_export() -> Response[str]:
    return not_implemented(app, "Usage export")


@app.delete("/v2/usage", summary="Delete the caller's usage (GDPR)", tags=["Baton"])
def usage_delete() -> Response[str]:
    return not_implemented(app, "Usage deletion")
