"""Task classifier: accuracy on prompts it was not fitted on, and latency by prompt size.

Accuracy is measured on three sets the weights and settings never saw:
- the held-out split of ``tests/data/router_dev.jsonl`` (indexes and the rule that chose
  them in ``tests/data/router_split.json``; ``scripts/train-router.py`` refuses to read
  them);
- ``tests/data/router_multilingual_holdout.jsonl``: prompts in eleven languages, several
  avoiding the obvious keyword, written for this check and never used for fitting or
  tuning;
- ``tests/data/router_fresh_holdout.jsonl``: 270 prompts (30 per task type, half English,
  the rest in 14 languages, most avoiding the obvious keyword), written and labelled by
  an annotator (an AI helper agent) who saw only ``tests/data/ROUTER_DATA.md``'s labelling
  guide and the dev prompts allowed for fitting, never the training files; never used
  for fitting or tuning.
The cross-validation numbers that chose the settings come from the model file itself.

Latency is one ``classify`` call on a single user message of 100, 1,000 and 10,000
characters, ``CALLS`` times each after ``WARMUP`` calls, with the shipped model already
loaded (loading is timed separately: it is paid once per container).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from baton.ai import classifier, router_lexicon  # noqa: E402
from baton.schema import UserMessage  # noqa: E402
from baton.tasks import COMPLEXITIES, TASK_TYPES  # noqa: E402
from bench.router_data import Labelled, held_out_dev, labelled_file  # noqa: E402

CALLS = 2000
WARMUP = 50
SIZES = (100, 1_000, 10_000)
# Ordinary prose with a request at the end, repeated to each size: the usual shape of a
# long prompt (pasted material, then the ask).
FILLER = (
    "The quarterly report shows revenue growth of 12% while costs rose 9%, driven by "
    "hiring in support and a new warehouse lease; churn held at 3.1% and the mobile app "
    "now brings 41% of orders. "
)
ASK = " Summarise the main points for the board in five bullets."


def evaluate(rows: list[Labelled]) -> dict[str, Any]:
    """Accuracies, the high<->low swap rate and both confusion matrices (rows: truth)."""
    task = [[0] * len(TASK_TYPES) for _ in TASK_TYPES]
    complexity = [[0] * len(COMPLEXITIES) for _ in COMPLEXITIES]
    for row in rows:
        got = classifier.classify([UserMessage(role="user", content=row.prompt)])
        task[TASK_TYPES.index(row.task_type)][TASK_TYPES.index(got.task_type)] += 1
        truth = COMPLEXITIES.index(row.complexity)
        complexity[truth][COMPLEXITIES.index(got.complexity)] += 1
    n = len(rows)
    high, low = COMPLEXITIES.index("high"), COMPLEXITIES.index("low")
    return {
        "n": n,
        "task_accuracy": sum(task[i][i] for i in range(len(TASK_TYPES))) / n,
        "complexity_accuracy": sum(complexity[i][i] for i in range(len(COMPLEXITIES))) / n,
        "high_low_swap_rate": (complexity[high][low] + complexity[low][high]) / n,
        "task_confusion": task,
        "complexity_confusion": complexity,
    }


def prompt_of(size: int) -> str:
    body = (FILLER * (size // len(FILLER) + 1))[: size - len(ASK)]
    return body + ASK


def latency(size: int) -> dict[str, float]:
    messages = [UserMessage(role="user", content=prompt_of(size))]
    for _ in range(WARMUP):
        classifier.classify(messages)
    samples = []
    for _ in range(CALLS):
        started = time.perf_counter_ns()
        classifier.classify(messages)
        samples.append((time.perf_counter_ns() - started) / 1000)
    cuts = statistics.quantiles(samples, n=100)
    return {"p50_us": cuts[49], "p99_us": cuts[98]}


def load_time_ms() -> float:
    """First-call cost of reading the shipped lexicon and weights (once per container)."""
    classifier.load_model.cache_clear()
    router_lexicon.load_lexicon.cache_clear()
    started = time.perf_counter()
    router_lexicon.load_lexicon()
    classifier.load_model()
    return (time.perf_counter() - started) * 1000


def run() -> dict[str, Any]:
    dev_rows, split = held_out_dev()
    model_file = resources.files("baton.data").joinpath("router_model.json")
    cross_validation = json.loads(model_file.read_text("utf-8"))["cross_validation"]
    return {
        "split": {k: v for k, v in split.items() if k != "held_out"} | {"n": len(dev_rows)},
        "held_out": evaluate(dev_rows),
        "multilingual": evaluate(labelled_file("router_multilingual_holdout.jsonl")),
        "fresh": evaluate(labelled_file("router_fresh_holdout.jsonl")),
        "cross_validation": cross_validation,
        "load_ms": load_time_ms(),
        "latency": {size: latency(size) for size in SIZES},
    }


def _matrix(labels: tuple[str, ...], matrix: list[list[int]]) -> list[str]:
    lines = [
        "| truth \\ predicted | " + " | ".join(labels) + " |",
        "| --- |" + " ---: |" * len(labels),
    ]
    lines += [
        f"| {label} | " + " | ".join(str(v) for v in row) + " |"
        for label, row in zip(labels, matrix, strict=True)
    ]
    return lines


def _scores(name: str, result: dict[str, Any]) -> str:
    return (
        f"| {name} | {result['n']} | {result['task_accuracy']:.1%} | "
        f"{result['complexity_accuracy']:.1%} | {result['high_low_swap_rate']:.1%} |"
    )


def render(result: dict[str, Any]) -> str:
    split, cv = result["split"], result["cross_validation"]
    cv_row = {
        "n": f"{cv['dev_rows']} x {cv['repeats']}",
        "task_accuracy": cv["task_accuracy"],
        "complexity_accuracy": cv["complexity_accuracy"],
        "high_low_swap_rate": cv["high_low_swap_rate"],
    }
    lines = [
        "| prompts never fitted on | n | task type | complexity | high<->low swaps |",
        "| --- | ---: | ---: | ---: | ---: |",
        _scores("dev held-out split", result["held_out"]),
        _scores("multilingual hold-out", result["multilingual"]),
        _scores("fresh hold-out (written this round)", result["fresh"]),
        _scores(f"dev CV ({cv['folds']}-fold x {cv['repeats']}, chose the settings)", cv_row),
        "",
        f"Split: {split['n']} of the 180 dev prompts held out, {split['held_out_per_task_type']} "
        f"per task type, seed {split['seed']}. {split['rule']} The other "
        f"{cv['dev_rows']} dev prompts and {cv['extra_rows']} written training prompts "
        "(`tests/data/router_train_*.jsonl`) fit the weights; cross-validation over "
        f"those {cv['dev_rows']} dev prompts (the written ones always train) chose "
        f"task C={cv['task_c']}, complexity C={cv['complexity_c']} and the lean towards "
        f"medium ({cv['medium_bias']}).",
        "",
        "Dev held-out, task type:",
        "",
        *_matrix(TASK_TYPES, result["held_out"]["task_confusion"]),
        "",
        "Dev held-out, complexity:",
        "",
        *_matrix(COMPLEXITIES, result["held_out"]["complexity_confusion"]),
        "",
        "Multilingual hold-out, task type:",
        "",
        *_matrix(TASK_TYPES, result["multilingual"]["task_confusion"]),
        "",
        "Fresh hold-out, task type:",
        "",
        *_matrix(TASK_TYPES, result["fresh"]["task_confusion"]),
        "",
        "Fresh hold-out, complexity:",
        "",
        *_matrix(COMPLEXITIES, result["fresh"]["complexity_confusion"]),
        "",
        f"Latency of one `classify` call, {CALLS} calls per size after {WARMUP} warm-up "
        f"calls; loading the lexicon and weights once per container: "
        f"{result['load_ms']:.1f} ms.",
        "",
        "| prompt characters | p50 (µs) | p99 (µs) |",
        "| ---: | ---: | ---: |",
    ]
    lines += [
        f"| {size:,} | {v['p50_us']:.0f} | {v['p99_us']:.0f} |"
        for size, v in result["latency"].items()
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(run()))
