"""Routing: which model answers a request, and why.

An explicit provider-qualified model is looked up and checked; ``model: "auto"`` is
chosen here. Every request is classified (task type and complexity, in well under a
millisecond, by :mod:`baton.ai.classifier`) and every candidate's cost estimated
(:mod:`baton.ai.estimate`), so the choice and the budget check see the same numbers.

Choosing: the candidates are the catalog's models whose provider is configured, whose
breaker is not open (``unavailable``), whose context window and capabilities
(vision, tools, JSON mode) fit the request, and whose estimate fits both the request's
``budget_usd`` and the caller's remaining monthly budget. Among them the best rated for
the task wins, where "best" depends on complexity: for a low-complexity prompt every
model rated at least 7/10 is as good as the best (so the cheapest of those wins), for a
medium one at least 9/10, and for a high one only the top rating counts. Ties go to the
cheaper model. This is "best rated within budget", without paying flagship prices for
"hi, how are you?".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from baton.ai.classifier import Classification, classify
from baton.ai.estimate import Estimate, estimate
from baton.catalog import Catalog, ModelInfo
from baton.errors import BudgetExceededError, InvalidRequestError
from baton.schema import ChatCompletionRequest
from baton.tasks import Complexity
from baton.tokens import estimate_prompt_tokens
from baton.usage import MICRO_USD_PER_USD

AUTO = "auto"
# The rating above which models count as equally good, per complexity (see docstring).
_GOOD_ENOUGH: dict[Complexity, int] = {"low": 7, "medium": 9, "high": 10}


@dataclass(frozen=True)
class Recommendation:
    model: ModelInfo
    estimate: Estimate
    quality: int
    reason: str

    @property
    def estimated_cost_usd(self) -> float:
        return self.estimate.cost_micro_usd / MICRO_USD_PER_USD


@dataclass(frozen=True)
class Route:
    """The routing decision for one request."""

    model: ModelInfo
    classification: Classification
    estimate: Estimate
    auto: bool


class Router:
    """Classifies requests, ranks candidates, and picks or checks the model."""

    def __init__(self, catalog: Catalog, servable: Callable[[ModelInfo], bool]) -> None:
        self._catalog = catalog
        self._servable = servable

    @staticmethod
    def classify(request: ChatCompletionRequest) -> Classification:
        return classify(request.messages)

    def route(
        self,
        request: ChatCompletionRequest,
        remaining_micro_usd: int | None,
        unavailable: frozenset[str] = frozenset(),
    ) -> Route:
        """The model for ``request``; 400/402/404 when none can serve it.

        ``unavailable`` holds models whose breaker is open: never chosen for ``auto`` (an
        explicit model stays, and its chain takes over in the invoker)."""
        classification = self.classify(request)
        prompt_tokens = estimate_prompt_tokens(request)
        budget = _request_budget(request)
        if request.model != AUTO:
            model = self._catalog.get(request.model)
            check_fits(model, request, prompt_tokens)
            cost = self._estimate(model, request, classification, prompt_tokens)
            limits = [b for b in (budget, remaining_micro_usd) if b is not None]
            if limits and cost.cost_micro_usd > min(limits):
                raise _over_budget(model, cost, budget, remaining_micro_usd)
            return Route(model, classification, cost, auto=False)
        ranked = self.recommend(
            request, classification, prompt_tokens, remaining_micro_usd, unavailable
        )
        if not ranked:
            raise self.nothing_fits(request, classification, remaining_micro_usd)
        best = ranked[0]
        return Route(best.model, classification, best.estimate, auto=True)

    def recommend(
        self,
        request: ChatCompletionRequest,
        classification: Classification,
        prompt_tokens: int,
        remaining_micro_usd: int | None,
        unavailable: frozenset[str] = frozenset(),
    ) -> list[Recommendation]:
        """Every candidate that fits the request and the budgets, best first."""
        budget = _request_budget(request)
        limits = [b for b in (budget, remaining_micro_usd) if b is not None]
        cap = min(limits) if limits else None
        good_enough = _GOOD_ENOUGH[classification.complexity]
        found: list[Recommendation] = []
        for model in self._candidates(request, prompt_tokens):
            if model.id in unavailable:
                continue
            cost = self._estimate(model, request, classification, prompt_tokens)
            if cap is not None and cost.cost_micro_usd > cap:
                continue
            quality = model.quality.get(classification.task_type, 0)
            found.append(
                Recommendation(model, cost, quality, _reason(classification, quality, cost))
            )
        found.sort(
            key=lambda r: (-min(r.quality, good_enough), r.estimate.cost_micro_usd, -r.quality)
        )
        return found

    def _candidates(self, request: ChatCompletionRequest, prompt_tokens: int) -> list[ModelInfo]:
        usable = [
            model
            for model in self._catalog
            if self._servable(model) and fit_problem(model, request, prompt_tokens) is None
        ]
        real = [model for model in usable if model.provider != "simulated"]
        return real or usable  # simulated models only when nothing real is configured

    @staticmethod
    def _estimate(
        model: ModelInfo,
        request: ChatCompletionRequest,
        classification: Classification,
        prompt_tokens: int,
    ) -> Estimate:
        return estimate(
            model,
            prompt_tokens,
            classification.task_type,
            classification.complexity,
            request.output_token_limit,
        )

    def nothing_fits(
        self,
        request: ChatCompletionRequest,
        classification: Classification,
        remaining_micro_usd: int | None,
    ) -> Exception:
        """The error for a request no candidate can serve: 400 if none fits its shape,
        else 402 naming the cheapest fitting model's estimate."""
        prompt_tokens = estimate_prompt_tokens(request)
        fitting = self._candidates(request, prompt_tokens)
        if not fitting:
            return InvalidRequestError(
                "No configured model can serve this request (its size, images, tools or "
                "JSON mode); shorten it or drop what the models lack.",
                param="messages",
                code="no_model_fits",
            )
        cost, model = min(
            ((self._estimate(m, request, classification, prompt_tokens), m) for m in fitting),
            key=lambda pair: pair[0].cost_micro_usd,
        )
        return _over_budget(model, cost, _request_budget(request), remaining_micro_usd)


def _request_budget(request: ChatCompletionRequest) -> int | None:
    if request.baton is None or request.baton.budget_usd is None:
        return None
    return int(request.baton.budget_usd * MICRO_USD_PER_USD)


def _usd(micro: int) -> str:
    return f"${micro / MICRO_USD_PER_USD:.6f}"


def _over_budget(
    model: ModelInfo, cost: Estimate, budget: int | None, remaining: int | None
) -> BudgetExceededError:
    if remaining is not None and (budget is None or remaining <= budget):
        where = f"your remaining monthly budget of {_usd(max(0, remaining))}"
    else:
        where = f"budget_usd of {_usd(budget or 0)}"
    return BudgetExceededError(
        f"The cheapest fitting model, '{model.id}', is estimated at "
        f"{_usd(cost.cost_micro_usd)}, above {where}.",
        param="baton.budget_usd" if where.startswith("budget_usd") else None,
    )


def _reason(classification: Classification, quality: int, cost: Estimate) -> str:
    return (
        f"rated {quality}/10 for {classification.task_type} "
        f"({classification.complexity} complexity), estimated {_usd(cost.cost_micro_usd)}"
    )


@dataclass(frozen=True)
class FitProblem:
    """Why a model cannot serve a request, as the 400 will say it."""

    message: str
    code: str
    param: str


def fit_problem(
    model: ModelInfo, request: ChatCompletionRequest, prompt_tokens: int
) -> FitProblem | None:
    """Why ``model`` cannot serve ``request``, or None when it can."""
    if request.has_images and not model.vision:
        return FitProblem(f"'{model.id}' does not accept images.", "model_no_vision", "messages")
    if (request.tools or request.functions) and not model.tools:
        return FitProblem(f"'{model.id}' does not support tools.", "model_no_tools", "tools")
    wants_json = request.response_format is not None and request.response_format.type != "text"
    if wants_json and not model.json_mode:
        return FitProblem(
            f"'{model.id}' has no JSON mode.", "model_no_json_mode", "response_format"
        )
    limit = request.output_token_limit
    if limit is not None and limit > model.max_output_tokens:
        return FitProblem(
            f"'{model.id}' can generate at most {model.max_output_tokens} tokens; "
            f"the request asks for {limit}.",
            "max_tokens_too_large",
            "max_tokens",
        )
    if prompt_tokens + (limit or 0) > model.context_window:
        return FitProblem(
            f"The prompt (about {prompt_tokens} tokens) does not fit the context window "
            f"of '{model.id}' ({model.context_window} tokens).",
            "context_length_exceeded",
            "messages",
        )
    return None


def check_fits(model: ModelInfo, request: ChatCompletionRequest, prompt_tokens: int) -> None:
    """400 when the request needs something ``model`` does not have."""
    problem = fit_problem(model, request, prompt_tokens)
    if problem is not None:
        raise InvalidRequestError(problem.message, param=problem.param, code=problem.code)
