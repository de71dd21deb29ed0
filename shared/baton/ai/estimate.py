"""Offline cost estimates: what a request will probably cost on a model, before asking it.

The prompt is counted with :mod:`baton.tokens`; the answer's length is expected from
the task type and complexity (a table, below) and capped by the request's
``max_tokens``; reasoning models think before answering, which costs output tokens too.
Prices come from ``genai-prices`` through :func:`baton.catalog.cost_micro_usd`.
"""

from __future__ import annotations

from dataclasses import dataclass

from baton.catalog import ModelInfo, cost_micro_usd
from baton.tasks import Complexity, TaskType
from baton.usage import TokenUsage

# Expected answer tokens per task type at low / medium / high complexity. Rough medians
# of what chat models answer for such prompts; summaries and translations also scale
# with the text they are given (see expected_output_tokens).
_OUTPUT_TOKENS: dict[TaskType, tuple[int, int, int]] = {
    "code": (300, 900, 2500),
    "math": (200, 700, 1800),
    "reasoning": (250, 800, 2000),
    "creative": (300, 900, 2500),
    "summarization": (150, 350, 800),
    "translation": (100, 300, 800),
    "extraction": (100, 300, 700),
    "analysis": (350, 900, 2000),
    "chat": (120, 350, 800),
}
_LEVEL = {"low": 0, "medium": 1, "high": 2}
# Reasoning models spend hidden thinking tokens, billed as output.
_REASONING_FACTOR = {"low": 1.5, "medium": 2.0, "high": 3.0}


@dataclass(frozen=True)
class Estimate:
    prompt_tokens: int
    output_tokens: int
    cost_micro_usd: int


def expected_output_tokens(
    task: TaskType,
    complexity: Complexity,
    prompt_tokens: int,
    model: ModelInfo,
    limit: int | None,
) -> int:
    """Answer tokens to expect, thinking included, never above the caller's limit."""
    tokens = _OUTPUT_TOKENS[task][_LEVEL[complexity]]
    if task == "translation":
        tokens = max(tokens, int(prompt_tokens * 1.1))
    elif task == "summarization":
        tokens = max(tokens, prompt_tokens // 5)
    if model.reasoning:
        tokens = int(tokens * _REASONING_FACTOR[complexity])
    tokens = min(tokens, model.max_output_tokens)
    return min(tokens, limit) if limit is not None else tokens


def estimate(
    model: ModelInfo,
    prompt_tokens: int,
    task: TaskType,
    complexity: Complexity,
    limit: int | None,
) -> Estimate:
    output = expected_output_tokens(task, complexity, prompt_tokens, model, limit)
    cost = cost_micro_usd(model, TokenUsage(input_tokens=prompt_tokens, output_tokens=output))
    return Estimate(prompt_tokens, output, cost)
