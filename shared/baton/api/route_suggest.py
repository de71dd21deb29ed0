"""``POST /v2/route-suggest``: which models the router would pick for a prompt, and why,
without calling any provider.

The body is ``{"prompt": "..."}`` or ``{"messages": [...]}``, with optional
``budget_usd`` and ``max_tokens``; the caller's remaining monthly budget is taken into
account as it would be for ``model: "auto"``.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, ConfigDict, Field, model_validator

from baton.ai.router import AUTO
from baton.api.powertools import authenticate, json_response, make_resolver
from baton.kv.client import get_sync_client
from baton.runtime import get_runtime
from baton.schema import BatonOptions, ChatCompletionRequest, Message, UserMessage
from baton.tokens import estimate_prompt_tokens
from baton.usage import MICRO_USD_PER_USD

app = make_resolver()
MAX_RECOMMENDATIONS = 5


class RouteSuggestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str | None = Field(default=None, min_length=1)
    messages: list[Message] | None = Field(default=None, min_length=1)
    budget_usd: float | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_input(self) -> RouteSuggestRequest:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("send exactly one of 'prompt' or 'messages'")
        return self

    def as_chat_request(self) -> ChatCompletionRequest:
        messages = self.messages or [UserMessage(role="user", content=self.prompt or "")]
        return ChatCompletionRequest(
            model=AUTO,
            messages=messages,
            max_tokens=self.max_tokens,
            baton=BatonOptions(budget_usd=self.budget_usd) if self.budget_usd is not None else None,
        )


class Recommendation(BaseModel):
    model: str
    estimated_cost_usd: float
    quality: int
    reason: str


class RouteSuggestion(BaseModel):
    task_type: str
    complexity: str
    confidence: float
    recommendations: list[Recommendation]
    remaining_budget_usd: float | None = None
    degraded: list[str] = Field(default_factory=list)


@app.post(
    "/v2/route-suggest",
    summary="Suggest models for a prompt, ranked, with estimated costs",
    tags=["Baton"],
    responses={
        200: {
            "description": "Task type, complexity and ranked recommendations",
            "content": {"application/json": {"model": RouteSuggestion}},
        }
    },
)
def route_suggest(body: Annotated[RouteSuggestRequest, Body()]) -> Response[str]:
    key = authenticate(app)
    runtime = get_runtime()
    request = body.as_chat_request()
    remaining, degraded = runtime.orchestrator.budgets.remaining_sync(key, get_sync_client)
    router = runtime.orchestrator.router
    classification = router.classify(request)
    ranked = router.recommend(request, classification, estimate_prompt_tokens(request), remaining)
    if not ranked:
        raise router.nothing_fits(request, classification, remaining)
    suggestion = RouteSuggestion(
        task_type=classification.task_type,
        complexity=classification.complexity,
        confidence=round(classification.confidence, 3),
        recommendations=[
            Recommendation(
                model=r.model.id,
                estimated_cost_usd=r.estimated_cost_usd,
                quality=r.quality,
                reason=r.reason,
            )
            for r in ranked[:MAX_RECOMMENDATIONS]
        ],
        remaining_budget_usd=None if remaining is None else remaining / MICRO_USD_PER_USD,
        degraded=["budget"] if degraded else [],
    )
    body_out: dict[str, Any] = suggestion.model_dump(mode="json")
    return json_response(app, body_out)
