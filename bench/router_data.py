"""The router's labelled prompt files, and the rule that keeps training and evaluation apart.

Training prompts are every ``tests/data/router_train_*.jsonl``; evaluation prompts are the
dev set (its held-out split is the measure, its other prompts are scored by
cross-validation), the multilingual hold-out and the fresh hold-out. Prompts written by
different people (or models) for the same purpose often converge on the same classic
examples ("is 221 prime?"), so a training prompt that is a near copy of any evaluation
prompt would flatter the scores: :func:`near_copies` finds those, and
``scripts/decontaminate-router-data.py`` drops them from the training files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix

from baton.ai.router_lexicon import normalise

DATA = Path(__file__).resolve().parents[1] / "tests/data"
TRAINING_GLOB = "router_train_*.jsonl"
EVALUATION_FILES = (
    "router_dev.jsonl",
    "router_multilingual_holdout.jsonl",
    "router_fresh_holdout.jsonl",
)
# Near copy: at least this share of words in common (Jaccard of the word sets), or of
# four-character pieces (catches Chinese/Japanese text and reworded punctuation).
WORD_OVERLAP = 0.4
PIECE_OVERLAP = 0.5


@dataclass(frozen=True)
class Labelled:
    prompt: str
    task_type: str
    complexity: str


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSON Lines file (blank lines skipped)."""
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def labelled_file(name: str) -> list[Labelled]:
    """The prompts of one file in ``tests/data``."""
    rows = read_rows(DATA / name)
    return [Labelled(r["prompt"], r["task_type"], r["complexity"]) for r in rows]


def held_out_dev() -> tuple[list[Labelled], dict[str, Any]]:
    """The held-out dev prompts and the split's description."""
    split = json.loads((DATA / "router_split.json").read_text())
    rows = labelled_file("router_dev.jsonl")
    return [rows[i] for i in split["held_out"]], split


def training_files() -> list[Path]:
    return sorted(DATA.glob(TRAINING_GLOB))


def evaluation_prompts() -> list[str]:
    return [row.prompt for name in EVALUATION_FILES for row in labelled_file(name)]


def _binary_matrix(sets: list[frozenset[str]], columns: dict[str, int]) -> csr_matrix:
    rows, cols = [], []
    for i, items in enumerate(sets):
        for item in items:
            rows.append(i)
            cols.append(columns.setdefault(item, len(columns)))
    return csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(sets), 1 << 24))


def _overlaps(a: list[frozenset[str]], b: list[frozenset[str]], threshold: float) -> np.ndarray:
    """Boolean matrix: Jaccard(a[i], b[j]) >= threshold, as one sparse product."""
    columns: dict[str, int] = {}
    ma, mb = _binary_matrix(a, columns), _binary_matrix(b, columns)
    common = (ma @ mb.T).toarray()
    sizes_a = np.array([len(s) for s in a], dtype=float)[:, None]
    sizes_b = np.array([len(s) for s in b], dtype=float)[None, :]
    union = sizes_a + sizes_b - common
    return (common >= threshold * union) & (union > 0)


def _words_and_pieces(prompt: str) -> tuple[frozenset[str], frozenset[str]]:
    text = " ".join(normalise(prompt).split())
    return frozenset(text.split()), frozenset(text[i : i + 4] for i in range(len(text) - 3))


def near_copies(prompts: list[str], references: list[str]) -> np.ndarray:
    """For each prompt, whether it is a near copy of any reference prompt."""
    a = [_words_and_pieces(p) for p in prompts]
    b = [_words_and_pieces(p) for p in references]
    words = _overlaps([w for w, _ in a], [w for w, _ in b], WORD_OVERLAP)
    pieces = _overlaps([p for _, p in a], [p for _, p in b], PIECE_OVERLAP)
    return np.asarray((words | pieces).any(axis=1))
