"""Fit the task classifier's weights and write ``shared/baton/data/router_model.json``.

Dev-only (needs scikit-learn and numpy from the ``dev`` extra); the shipped classifier
scores the weights in pure Python. Run from the checkout root:

    .venv/bin/python scripts/train-router.py            # cross-validate, fit, write
    .venv/bin/python scripts/train-router.py --cv-only  # only print the CV numbers

Honest evaluation: the held-out part of ``tests/data/router_dev.jsonl`` (the indexes in
``tests/data/router_split.json``, fixed from the labels before any fitting) is never
read here, nor are the two hold-out files; the training prompts are every
``tests/data/router_train_*.jsonl`` (``tests/data/ROUTER_DATA.md`` says what each is).
Everything that is tuned (regularisation, the lean towards ``medium``, how much a dev
prompt weighs against a written training one) is chosen by cross-validation on the other
dev prompts only; ``bench/classifier.py`` then reports held-out accuracy.

Reproducible: the same inputs give byte-identical output (fixed seeds, deterministic
solver, cross-validation folds fitted in parallel but assembled in a fixed order, sorted
features, float32 weights). A full run takes about 6-8 minutes on two cores.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import random
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression

from baton.ai.classifier import pick_complexity
from baton.ai.router_features import extract_features
from baton.schema import UserMessage
from baton.tasks import COMPLEXITIES, TASK_TYPES

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / "tests/data/router_dev.jsonl"
SPLIT = ROOT / "tests/data/router_split.json"
# Hand-written training prompts (every ``router_train_*.jsonl``, read in name order).
EXTRA_GLOB = "tests/data/router_train_*.jsonl"
OUT = ROOT / "shared/baton/data/router_model.json"

CV_FOLDS = 5
CV_REPEATS = 3
CV_SEED = 7
# Word-level features must occur in at least this many training prompts to be kept:
# one-off words are noise that a small model would memorise. Character n-grams are many
# more and each says less, so they need more support.
MIN_DF = 2
NGRAM_MIN_DF = 5
# Features whose weights all stay below this are dropped from the fitted model (in CV
# too, so the scores are those of the shipped model): they barely move a score but would
# make the file and its loading several times bigger.
PRUNE_BELOW = 0.02
# Prefixes of the features each model sees: complexity is about the shape and size of
# the ask, so it gets the structural and cue features, not the vocabulary.
TASK_PREFIXES = ("w:", "g:", "c:", "s:", "L:", "C:")
COMPLEXITY_PREFIXES = ("s:", "L:", "C:")
# Searched by cross-validation.
TASK_C_GRID = (3.0, 10.0)
COMPLEXITY_C_GRID = (0.3, 1.0, 3.0)
MEDIUM_BIAS_GRID = tuple(round(0.1 * i, 1) for i in range(0, 16))
DEV_WEIGHT_GRID = (1.0, 3.0)
OBJECTIVE_TOLERANCE = 0.01
DECIMALS = 4


@dataclass(frozen=True)
class Row:
    prompt: str
    task_type: str
    complexity: str
    source: str  # "dev" or "extra"


def stratified_split(
    labels: list[tuple[str, str]], seed: int, per_type: int, skip_below: int
) -> list[int]:
    """The held-out indexes: recomputes the rule written in ``router_split.json``."""
    rng = random.Random(seed)  # noqa: S311 (a seeded, reproducible shuffle; not security)
    groups: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, (task, complexity) in enumerate(labels):
        groups[task][complexity].append(i)
    held: list[int] = []
    for task in sorted(groups):
        by_complexity = groups[task]
        total = sum(len(v) for v in by_complexity.values())
        quotas = {c: per_type * len(v) / total for c, v in by_complexity.items()}
        alloc = {c: int(q) for c, q in quotas.items()}
        leftover = per_type - sum(alloc.values())
        for c in sorted(quotas, key=lambda c: (-(quotas[c] - alloc[c]), c))[:leftover]:
            alloc[c] += 1
        for c in sorted(by_complexity):
            candidates = sorted(i for i in by_complexity[c] if i >= skip_below)
            rng.shuffle(candidates)
            held += candidates[: alloc[c]]
    return sorted(held)


def load_rows() -> tuple[list[Row], list[Row]]:
    """(dev prompts allowed for fitting, written training prompts). Held-out is skipped."""
    split = json.loads(SPLIT.read_text())
    dev_raw = [json.loads(line) for line in DEV.read_text().splitlines() if line.strip()]
    labels = [(r["task_type"], r["complexity"]) for r in dev_raw]
    expected = stratified_split(
        labels,
        split["seed"],
        split["held_out_per_task_type"],
        split["never_held_out_below_line_index"],
    )
    if expected != split["held_out"]:
        sys.exit(f"{SPLIT} does not match its own rule; refusing to train")
    held = set(split["held_out"])
    dev = [
        Row(r["prompt"], r["task_type"], r["complexity"], "dev")
        for i, r in enumerate(dev_raw)
        if i not in held
    ]
    extra = [
        Row(r["prompt"], r["task_type"], r["complexity"], "extra")
        for path in sorted(ROOT.glob(EXTRA_GLOB))
        for r in (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    ]
    return dev, extra


def featurize(row: Row) -> dict[str, float]:
    return extract_features([UserMessage(role="user", content=row.prompt)])


def select(
    features: dict[str, float], prefixes: tuple[str, ...], vocabulary: set[str]
) -> dict[str, float]:
    """The features one model sees: its prefixes, and word-level ones only if frequent."""
    return {
        k: v
        for k, v in features.items()
        if k.startswith(prefixes) and (k[0] in "sLC" or k in vocabulary)
    }


def vocabulary(feature_rows: list[dict[str, float]]) -> set[str]:
    """Word-level features seen in at least MIN_DF (n-grams: NGRAM_MIN_DF) prompts."""
    counts = Counter(k for features in feature_rows for k in features)
    return {k for k, n in counts.items() if n >= (NGRAM_MIN_DF if k[0] == "g" else MIN_DF)}


@dataclass
class Fitted:
    vectorizer: DictVectorizer
    model: LogisticRegression
    prefixes: tuple[str, ...]
    vocabulary: set[str]

    def probabilities(self, feature_rows: list[dict[str, float]]) -> np.ndarray:
        x = self.vectorizer.transform(
            [select(f, self.prefixes, self.vocabulary) for f in feature_rows]
        )
        return self.model.predict_proba(x)


def fit(
    feature_rows: list[dict[str, float]],
    labels: list[str],
    weights: list[float],
    prefixes: tuple[str, ...],
    c: float,
    classes: tuple[str, ...],
) -> Fitted:
    vocab = vocabulary(feature_rows)
    vectorizer = DictVectorizer(sort=True)
    x = vectorizer.fit_transform([select(f, prefixes, vocab) for f in feature_rows])
    y = np.array([classes.index(label) for label in labels])
    model = LogisticRegression(C=c, max_iter=2000)
    model.fit(x, y, sample_weight=np.array(weights))
    model.coef_[:, np.abs(model.coef_).max(axis=0) < PRUNE_BELOW] = 0.0
    return Fitted(vectorizer, model, prefixes, vocab)


def folds(rows: list[Row], repeat: int) -> list[list[int]]:
    """Stratified (by task type) fold assignment of the dev rows, one shuffle per repeat."""
    rng = random.Random(CV_SEED + repeat)  # noqa: S311 (reproducible folds; not security)
    by_task: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        by_task[row.task_type].append(i)
    out: list[list[int]] = [[] for _ in range(CV_FOLDS)]
    offset = 0
    for task in sorted(by_task):
        idx = by_task[task]
        rng.shuffle(idx)
        for j, i in enumerate(idx):
            out[(offset + j) % CV_FOLDS].append(i)
        offset += len(idx)
    return out


@dataclass
class TaskChoice:
    accuracy: float
    c: float
    dev_weight: float
    confusion: list[list[int]]


@dataclass
class ComplexityChoice:
    accuracy: float
    swap_rate: float
    c: float
    dev_weight: float
    medium_bias: float
    confusion: list[list[int]]


@dataclass(frozen=True)
class Target:
    """What one model predicts: the row attribute, its classes and the features it sees."""

    attribute: str
    classes: tuple[str, ...]
    prefixes: tuple[str, ...]


TASK = Target("task_type", TASK_TYPES, TASK_PREFIXES)
COMPLEXITY = Target("complexity", COMPLEXITIES, COMPLEXITY_PREFIXES)


@dataclass(frozen=True)
class TrainingSet:
    """The rows to fit on, with their features: the dev rows (the ones CV scores) and the
    written training prompts (always trained on)."""

    dev: list[Row]
    extra: list[Row]
    dev_feats: list[dict[str, float]]
    extra_feats: list[dict[str, float]]

    def fit(
        self, target: Target, c: float, dev_weight: float, dev_rows: list[int] | None = None
    ) -> Fitted:
        """A model on every written prompt and the dev rows ``dev_rows`` (default: all)."""
        train = list(range(len(self.dev))) if dev_rows is None else dev_rows
        return fit(
            self.extra_feats + [self.dev_feats[i] for i in train],
            [getattr(r, target.attribute) for r in self.extra]
            + [getattr(self.dev[i], target.attribute) for i in train],
            [1.0] * len(self.extra) + [dev_weight] * len(train),
            target.prefixes,
            c,
            target.classes,
        )


def _fold_probabilities(
    data: TrainingSet, target: Target, fold: list[int], c: float, dev_weight: float
) -> np.ndarray:
    """Probabilities for the dev rows of ``fold`` from a model fitted without them."""
    held = set(fold)
    fitted = data.fit(target, c, dev_weight, [i for i in range(len(data.dev)) if i not in held])
    return fitted.probabilities([data.dev_feats[i] for i in fold])


def out_of_fold(data: TrainingSet, target: Target, c: float, dev_weight: float) -> list[np.ndarray]:
    """Probabilities for every dev row from models that did not see it, per CV repeat.

    The written training prompts are always in the training part: only the dev rows
    are evaluated, since they are what held-out prompts look like.
    """
    dev = data.dev
    splits = [(repeat, fold) for repeat in range(CV_REPEATS) for fold in folds(dev, repeat)]
    # One fit per (repeat, fold), spread over the cores: each is deterministic on its own,
    # so the result does not depend on the order they finish in.
    results = Parallel(n_jobs=-1)(
        delayed(_fold_probabilities)(data, target, fold, c, dev_weight) for _, fold in splits
    )
    out: list[np.ndarray] = []
    for repeat in range(CV_REPEATS):
        probs: list[Any] = [None] * len(dev)
        for (r, fold), fold_probs in zip(splits, results, strict=True):
            if r == repeat:
                for i, p in zip(fold, fold_probs, strict=True):
                    probs[i] = p
        out += probs
    return out


def choose_task(data: TrainingSet) -> TaskChoice:
    """Regularisation and dev-row weight with the best CV task accuracy (ties: smaller C)."""
    truth = [TASK_TYPES.index(r.task_type) for r in data.dev] * CV_REPEATS
    best: TaskChoice | None = None
    for dev_weight, c in itertools.product(DEV_WEIGHT_GRID, TASK_C_GRID):
        probs = out_of_fold(data, TASK, c, dev_weight)
        picks = [int(np.argmax(p)) for p in probs]
        acc = sum(p == t for p, t in zip(picks, truth, strict=True)) / len(truth)
        print(f"  task       C={c:<5} dev_weight={dev_weight}: accuracy {acc:.3f}", file=sys.stderr)
        if best is None or acc > best.accuracy + 1e-9:
            best = TaskChoice(acc, c, dev_weight, confusion(picks, truth, len(TASK_TYPES)))
    assert best is not None
    return best


def choose_complexity(data: TrainingSet) -> ComplexityChoice:
    """Settings with the best CV complexity accuracy, a high<->low swap costing two misses.

    Settings within ``OBJECTIVE_TOLERANCE`` of the best are equally good given the noise
    of 117 prompts; of those, the weakest lean towards medium wins (then the smaller C),
    so that a lucky CV draw does not buy a lean that hides every ``low``.
    """
    truth = [COMPLEXITIES.index(r.complexity) for r in data.dev] * CV_REPEATS
    candidates: list[tuple[float, ComplexityChoice]] = []
    for dev_weight, c in itertools.product(DEV_WEIGHT_GRID, COMPLEXITY_C_GRID):
        probs = out_of_fold(data, COMPLEXITY, c, dev_weight)
        for bias in MEDIUM_BIAS_GRID:
            picks = [pick_complexity(list(p), bias) for p in probs]
            acc = sum(p == t for p, t in zip(picks, truth, strict=True)) / len(truth)
            swaps = sum(abs(p - t) == 2 for p, t in zip(picks, truth, strict=True)) / len(truth)
            choice = ComplexityChoice(
                acc, swaps, c, dev_weight, bias, confusion(picks, truth, len(COMPLEXITIES))
            )
            candidates.append((acc - 2 * swaps, choice))
        print(f"  complexity C={c:<5} dev_weight={dev_weight} done", file=sys.stderr)
    top = max(objective for objective, _ in candidates)
    near = [choice for objective, choice in candidates if objective >= top - OBJECTIVE_TOLERANCE]
    best = min(near, key=lambda ch: (ch.medium_bias, ch.c, ch.dev_weight))
    assert best is not None
    return best


def confusion(predicted: list[int], truth: list[int], n: int) -> list[list[int]]:
    matrix = [[0] * n for _ in range(n)]
    for p, t in zip(predicted, truth, strict=True):
        matrix[t][p] += 1
    return matrix


def export(fitted: Fitted, classes: tuple[str, ...]) -> dict[str, Any]:
    """The model as JSON: bias, the kept feature names, and their rows as packed float32."""
    names = fitted.vectorizer.get_feature_names_out()
    coef = fitted.model.coef_
    kept = [j for j in range(len(names)) if np.abs(coef[:, j]).max() > 0]
    kept.sort(key=lambda j: str(names[j]))
    rows = coef[:, kept].T.astype("<f4")
    return {
        "labels": list(classes),
        "bias": [round(float(b), DECIMALS) for b in fitted.model.intercept_],
        "features": [str(names[j]) for j in kept],
        "weights_f32le": base64.b64encode(rows.tobytes()).decode("ascii"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cv-only", action="store_true", help="print CV numbers, write nothing")
    args = parser.parse_args()

    dev, extra = load_rows()
    data = TrainingSet(dev, extra, [featurize(r) for r in dev], [featurize(r) for r in extra])
    task_choice = choose_task(data)
    complexity_choice = choose_complexity(data)
    report = {
        "folds": CV_FOLDS,
        "repeats": CV_REPEATS,
        "seed": CV_SEED,
        "dev_rows": len(dev),
        "extra_rows": len(extra),
        "task_accuracy": round(task_choice.accuracy, 4),
        "task_c": task_choice.c,
        "task_dev_weight": task_choice.dev_weight,
        "task_confusion": task_choice.confusion,
        "complexity_accuracy": round(complexity_choice.accuracy, 4),
        "high_low_swap_rate": round(complexity_choice.swap_rate, 4),
        "complexity_c": complexity_choice.c,
        "complexity_dev_weight": complexity_choice.dev_weight,
        "medium_bias": complexity_choice.medium_bias,
        "complexity_confusion": complexity_choice.confusion,
    }
    print(json.dumps({k: v for k, v in report.items() if "confusion" not in k}, indent=1))
    for name, labels, matrix in (
        ("task", TASK_TYPES, task_choice.confusion),
        ("complexity", COMPLEXITIES, complexity_choice.confusion),
    ):
        print(f"{name} CV confusion (rows: truth, columns: predicted)")
        for label, row in zip(labels, matrix, strict=True):
            print(f"  {label:>14} {row}")
    if args.cv_only:
        return

    task = data.fit(TASK, task_choice.c, task_choice.dev_weight)
    complexity = data.fit(COMPLEXITY, complexity_choice.c, complexity_choice.dev_weight)
    doc = {
        "about": "Written by scripts/train-router.py; do not edit. Scored by baton.ai.classifier.",
        "cross_validation": report,
        "task": export(task, TASK_TYPES),
        "complexity": {
            **export(complexity, COMPLEXITIES),
            "medium_bias": complexity_choice.medium_bias,
        },
    }
    OUT.write_text(
        json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True) + "\n"
    )
    print(
        f"wrote {OUT.relative_to(ROOT)}: {OUT.stat().st_size} bytes, "
        f"{len(doc['task']['features'])} task features"
    )


if __name__ == "__main__":
    main()
