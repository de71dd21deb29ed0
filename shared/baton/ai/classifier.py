"""Task classification: which of the nine task types a conversation asks for, and how hard.

The router needs this on every ``auto`` request, so it must cost well under a
millisecond and touch no network. A transformer would be more accurate but far too slow
and too big for the Lambda layer; a small linear model over interpretable features is
fast, ships as one JSON file and can be read when it gets something wrong.

- :mod:`baton.ai.router_features` turns the messages into sparse named features.
- Two multinomial logistic regressions (task type, complexity) score them. Their
  weights are fitted offline by ``scripts/train-router.py`` and shipped in
  ``data/router_model.json``; scoring here is dictionary look-ups and column sums in
  pure Python, with each word's character n-gram rows memoised.
- Complexity can lean towards ``medium`` when unsure (a bias chosen by cross-validation
  on held-in data; the shipped model's is in the file), which keeps ``high`` from being
  called ``low`` or the reverse.
"""

from __future__ import annotations

import base64
import json
import math
import sys
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from baton.ai.router_features import NGRAM_WEIGHT, extract, word_ngrams
from baton.tasks import COMPLEXITIES, TASK_TYPES, Complexity, TaskType

_MODEL_FILE = "router_model.json"
# Distinct words whose n-gram rows are memoised per process before the memo starts over.
_NGRAM_MEMO_LIMIT = 50_000


@dataclass(frozen=True)
class LinearModel:
    """A multinomial logistic regression: per-class bias plus one weight row per feature.

    The rows are stored packed (float32, one row of ``len(labels)`` per feature, in the
    order of ``features``) and base64-encoded in the JSON file: tens of thousands of
    rows load in milliseconds that way, where JSON lists of numbers took half a second.
    """

    labels: tuple[str, ...]
    bias: tuple[float, ...]
    # Feature name -> its row's position in ``weights`` until first used, then the row
    # itself as a tuple (see :meth:`probabilities`).
    table: dict[str, int | tuple[float, ...]]
    weights: array[float]
    # word -> the rows of its n-grams (bounded: cleared when full).
    ngram_memo: dict[str, dict[str, tuple[float, ...]]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> LinearModel:
        weights = array("f")
        weights.frombytes(base64.b64decode(raw["weights_f32le"]))
        if sys.byteorder != "little":
            weights.byteswap()
        features: list[str] = raw["features"]
        if len(weights) != len(features) * len(raw["labels"]):
            raise ValueError("router model: weight rows do not match the feature list")
        return cls(
            labels=tuple(raw["labels"]),
            bias=tuple(raw["bias"]),
            table={name: i for i, name in enumerate(features)},
            weights=weights,
        )

    def probabilities(
        self, features: dict[str, float], ngram_words: frozenset[str] = frozenset()
    ) -> list[float]:
        """Class probabilities for one prompt's features and n-gram words.

        Rows are grouped by feature value and each group's columns summed with zip/sum
        in C, then scaled once (most features share a few values: 1.0, the n-gram
        weight); measured 2-4x faster than scaling row by row. The n-grams' rows come
        from a per-word memo, merged by n-gram so that one shared by two words counts
        once, as in training.
        """
        groups: dict[float, list[tuple[float, ...]]] = {}
        pairs: Iterable[tuple[str, float]] = features.items()
        # Walk the smaller side: the complexity model knows a few dozen features.
        if len(self.table) < len(features):
            pairs = [(name, features[name]) for name in self.table if name in features]
        for name, value in pairs:
            row = self._row(name)
            if row is not None:
                group = groups.get(value)
                if group is None:
                    groups[value] = [row]
                else:
                    group.append(row)
        if ngram_words:
            merged: dict[str, tuple[float, ...]] = {}
            for word in ngram_words:
                merged.update(self._ngram_rows(word))
            if merged:
                groups.setdefault(NGRAM_WEIGHT, []).extend(merged.values())
        totals = list(self.bias)
        for value, rows in groups.items():
            sums = map(sum, zip(*rows, strict=True))
            totals = [t + value * s for t, s in zip(totals, sums, strict=True)]
        return softmax(totals)

    def _row(self, name: str) -> tuple[float, ...] | None:
        """A feature's row, turned into a tuple in place in ``table`` on first use:
        unpacking every row at load would double the load time, and zipping tuples is
        several times faster than zipping slices of the packed array."""
        row = self.table.get(name)
        if isinstance(row, int):
            width = len(self.labels)
            row = self.table[name] = tuple(self.weights[row * width : (row + 1) * width])
        return row

    def _ngram_rows(self, word: str) -> dict[str, tuple[float, ...]]:
        """The rows of the n-grams of ``word`` this model knows, memoised per word."""
        rows = self.ngram_memo.get(word)
        if rows is None:
            rows = {}
            for gram in word_ngrams(word):
                row = self._row(gram)
                if row is not None:
                    rows[gram] = row
            if len(self.ngram_memo) >= _NGRAM_MEMO_LIMIT:
                self.ngram_memo.clear()
            self.ngram_memo[word] = rows
        return rows


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
    extracted = extract(messages)
    features = extracted.features
    if not features:
        return Classification("chat", "low", 0.0, {t: 0.0 for t in TASK_TYPES})
    model = load_model()
    task_probs = model.task.probabilities(features, extracted.ngram_words)
    best = max(range(len(task_probs)), key=task_probs.__getitem__)
    complexity = pick_complexity(model.complexity.probabilities(features), model.medium_bias)
    return Classification(
        task_type=TASK_TYPES[best],
        complexity=COMPLEXITIES[complexity],
        confidence=task_probs[best],
        scores=dict(zip(TASK_TYPES, task_probs, strict=True)),
    )
