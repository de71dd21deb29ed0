"""Task classification: which of the nine task types a conversation asks for, and how hard.

The router needs this on every ``auto`` request, so it must cost well under a
millisecond and touch no network. A transformer would be more accurate but far too slow
and too big for the Lambda layer; a small linear model over interpretable features is
fast, ships as one JSON file and can be read when it gets something wrong.

- :mod:`baton.ai.router_features` turns the messages into sparse named features.
- Two multinomial logistic regressions (task type, complexity) score them. Their
  weights are fitted offline by ``scripts/train-router.py`` and shipped in
  ``data/router_model.json``; scoring here is a few dictionary look-ups in pure Python.
- Complexity leans towards ``medium`` when unsure (a bias fitted on held-in data), so
  ``high`` is rarely called ``low`` or the reverse.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from baton.ai.router_features import extract_features
from baton.tasks import COMPLEXITIES, TASK_TYPES, Complexity, TaskType

_MODEL_FILE = "router_model.json"


@dataclass(frozen=True)
class LinearModel:
    """A multinomial logistic regression: per-class bias plus per-feature weight rows."""

    labels: tuple[str, ...]
    bias: tuple[float, ...]
    weights: dict[str, tuple[float, ...]]

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> LinearModel:
        return cls(
            labels=tuple(raw["labels"]),
            bias=tuple(raw["bias"]),
            weights={name: tuple(row) for name, row in raw["weights"].items()},
        )

    def probabilities(self, features: dict[str, float]) -> list[float]:
        # Gather the matching rows, then sum the columns with zip/sum in C: measured about
        # twice as fast as per-class dot products, and far faster than a loop per class.
        weights = self.weights
        rows: list[tuple[float, ...]] = [self.bias]
        for name, value in features.items():
            row = weights.get(name)
            if row is not None:
                rows.append(row if value == 1.0 else tuple([w * value for w in row]))
        return softmax(list(map(sum, zip(*rows, strict=True))))


def softmax(scores: Sequence[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


@dataclass(frozen=True)
class RouterModel:
    """Both shipped models and the complexity decision's lean towards ``medium``."""

    task: LinearModel
    complexity: LinearModel
    medium_bias: float


@cache
def load_model() -> RouterModel:
    """The shipped weights, read once per process."""
    raw = json.loads(resources.files("baton.data").joinpath(_MODEL_FILE).read_text("utf-8"))
    task = LinearModel.from_json(raw["task"])
    complexity = LinearModel.from_json(raw["complexity"])
    if task.labels != TASK_TYPES or complexity.labels != COMPLEXITIES:
        raise ValueError(f"{_MODEL_FILE} labels do not match baton.tasks")
    return RouterModel(task, complexity, float(raw["complexity"]["medium_bias"]))


def pick_complexity(probabilities: Sequence[float], medium_bias: float) -> int:
    """Index of the chosen complexity: the most likely after leaning towards medium."""
    medium = COMPLEXITIES.index("medium")
    scores = [math.log(max(p, 1e-12)) for p in probabilities]
    scores[medium] += medium_bias
    return max(range(len(scores)), key=scores.__getitem__)


@dataclass(frozen=True)
class Classification:
    """What the router needs: task type and complexity, and how sure the model is."""

    task_type: TaskType
    complexity: Complexity
    confidence: float
    scores: dict[str, float] = field(default_factory=dict)


def classify(messages: Sequence[Any]) -> Classification:
    """Classify a conversation (``baton.schema`` messages, or anything with role/content).

    ``confidence`` is the task model's probability for the chosen type; ``scores`` holds
    every type's. A conversation with no text at all is ``chat``/``low`` with confidence
    0: there is nothing to route on, and the cheapest model is the right answer.
    """
    features = extract_features(messages)
    if not features:
        return Classification("chat", "low", 0.0, {t: 0.0 for t in TASK_TYPES})
    model = load_model()
    task_probs = model.task.probabilities(features)
    best = max(range(len(task_probs)), key=task_probs.__getitem__)
    complexity = pick_complexity(model.complexity.probabilities(features), model.medium_bias)
    return Classification(
        task_type=TASK_TYPES[best],
        complexity=COMPLEXITIES[complexity],
        confidence=task_probs[best],
        scores=dict(zip(TASK_TYPES, task_probs, strict=True)),
    )
