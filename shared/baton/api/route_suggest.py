"""``POST /v2/route-suggest``: the router's recommendation for a prompt (not yet built)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from baton.api.not_yet import not_implemented
from baton.api.powertools import make_resolver

app = make_resolver()


@app.post("/v2/route-suggest", summary="Suggest a model for a prompt", tags=["Baton"])
def route_suggest() -> Response[str]:
    return not_implemented(app, "Route suggestions")
