"""The router's choices on a small synthetic catalog: capabilities, context windows,
budgets and complexity decide, and the reasons say so."""

from __future__ import annotations

from typing import Any

import pytest

from baton.ai.router import Router
from baton.catalog import Catalog, ModelInfo
from baton.errors import BudgetExceededError, InvalidRequestError, NotFoundError
from baton.schema import ChatCompletionRequest
from baton.tasks import TASK_TYPES
from baton.tokens import estimate_prompt_tokens


def model(model_id: str, price_ref: str, quality: int, **kw: Any) -> ModelInfo:
    fields: dict[str, Any] = {
        "context_window": 128_000,
        "max_output_tokens": 16_000,
        "vision": True,
        "tools": True,
        "json_mode": True,
        **kw,
    }
    return ModelInfo(
        id=model_id,
        price_ref=price_ref,
        quality=dict.fromkeys(TASK_TYPES, quality),
        **fields,
    )


FLAGSHIP = model("openai/gpt-5.5", "gpt-5.5", 10)
MID = model("openai/gpt-5.4-mini", "gpt-5.4-mini", 8)
CHEAP_TEXT_ONLY = model("openai/gpt-5.4-nano", "gpt-5.4-nano", 6, vision=False)
SMALL_WINDOW = model("openai/gpt-4o-mini", "gpt-4o-mini", 7, context_window=2_000)


def router(*models: ModelInfo) -> Router:
    return Router(Catalog(list(models)), servable=lambda m: True)


def request(
    content: Any = "Prove that the square root of 2 is irrational.", **kw: Any
) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "auto", "messages": [{"role": "user", "content": content}], **kw}
    )


def cost(r: Router, req: ChatCompletionRequest, model_id: str) -> int:
    ranked = r.recommend(req, r.classify(req), estimate_prompt_tokens(req), None)
    return next(x.estimate.cost_micro_usd for x in ranked if x.model.id == model_id)


def test_without_a_budget_a_hard_prompt_gets_the_best_rated_model() -> None:
    hard = request(
        "Design a lock-free multi-producer multi-consumer queue in C++ with hazard pointers, "
        "prove linearizability, and analyse its memory-reclamation cost under contention."
    )
    assert router(FLAGSHIP, MID, CHEAP_TEXT_ONLY).route(hard, None).model is FLAGSHIP


def test_a_budget_that_only_the_cheapest_model_fits_selects_it() -> None:
    r = router(FLAGSHIP, MID, CHEAP_TEXT_ONLY)
    probe = request()
    cheapest, next_up = cost(r, probe, CHEAP_TEXT_ONLY.id), cost(r, probe, MID.id)
    assert cheapest < next_up
    budget_usd = (cheapest + next_up) / 2 / 1_000_000
    route = r.route(request(baton={"budget_usd": budget_usd}), None)
    assert route.model is CHEAP_TEXT_ONLY
    assert route.estimate.cost_micro_usd <= budget_usd * 1_000_000


def test_the_remaining_monthly_budget_limits_auto_too() -> None:
    r = router(FLAGSHIP, MID, CHEAP_TEXT_ONLY)
    probe = request()
    remaining = cost(r, probe, CHEAP_TEXT_ONLY.id) + 1
    assert r.route(probe, remaining).model is CHEAP_TEXT_ONLY


def test_nothing_within_budget_is_402_naming_the_cheapest_estimate() -> None:
    with pytest.raises(BudgetExceededError) as raised:
        router(FLAGSHIP, MID).route(request(baton={"budget_usd": 0.0000001}), None)
    assert "openai/gpt-5.4-mini" in raised.value.message
    assert raised.value.status == 402 and raised.value.code == "budget_exceeded"


def test_images_never_go_to_a_text_only_model() -> None:
    image = [
        {"type": "text", "text": "what is in this picture?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    r = router(CHEAP_TEXT_ONLY, MID)
    ranked = r.recommend(request(image), r.classify(request(image)), 900, None)
    assert [x.model for x in ranked] == [MID]
    with pytest.raises(InvalidRequestError) as raised:
        router(CHEAP_TEXT_ONLY).route(request(image), None)
    assert raised.value.code == "no_model_fits"
    explicit = request(image)
    explicit = explicit.model_copy(update={"model": CHEAP_TEXT_ONLY.id})
    with pytest.raises(InvalidRequestError) as raised:
        router(CHEAP_TEXT_ONLY).route(explicit, None)
    assert raised.value.code == "model_no_vision"


def test_a_prompt_larger_than_a_context_window_never_goes_to_that_model() -> None:
    long_prompt = "Summarise this report. " + "The quarterly numbers rose again. " * 400
    r = router(SMALL_WINDOW, MID)
    for budget in (None, 1.0):
        extra = {"baton": {"budget_usd": budget}} if budget else {}
        assert r.route(request(long_prompt, **extra), None).model is MID
    with pytest.raises(InvalidRequestError) as raised:
        explicit = request(long_prompt).model_copy(update={"model": SMALL_WINDOW.id})
        router(SMALL_WINDOW).route(explicit, None)
    assert raised.value.code == "context_length_exceeded"


def test_models_whose_breaker_is_open_are_not_candidates() -> None:
    r = router(FLAGSHIP, MID)
    assert r.route(request(), None, unavailable=frozenset({FLAGSHIP.id})).model is MID


def test_low_complexity_prompts_take_the_cheapest_good_enough_model() -> None:
    r = router(FLAGSHIP, MID, CHEAP_TEXT_ONLY)
    route = r.route(request("hi, how are you?"), None)
    assert route.classification.complexity == "low"
    assert route.model is MID  # rated 8 >= 7: as good as the flagship here, and cheaper


def test_explicit_models_are_checked_not_chosen() -> None:
    r = router(FLAGSHIP, MID)
    explicit = request().model_copy(update={"model": MID.id})
    route = r.route(explicit, None)
    assert route.model is MID and not route.auto
    with pytest.raises(NotFoundError):
        r.route(request().model_copy(update={"model": "openai/unknown"}), None)
    with pytest.raises(BudgetExceededError):
        r.route(explicit, 0)


def test_recommendations_carry_cost_and_reason() -> None:
    r = router(FLAGSHIP, MID, CHEAP_TEXT_ONLY)
    req = request()
    ranked = r.recommend(req, r.classify(req), 100, None)
    assert {x.model.id for x in ranked} == {FLAGSHIP.id, MID.id, CHEAP_TEXT_ONLY.id}
    for item in ranked:
        assert item.estimated_cost_usd > 0
        assert f"/10 for {r.classify(req).task_type}" in item.reason
