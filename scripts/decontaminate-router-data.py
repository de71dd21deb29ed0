"""Drop training prompts that are near copies of an evaluation prompt (dev-only tool).

Run from the checkout root after adding training data:

    .venv/bin/python scripts/decontaminate-router-data.py

Rewrites each ``tests/data/router_train_*.jsonl`` without the prompts that
:func:`bench.router_data.near_copies` matches to any prompt of the dev set, the
multilingual hold-out or the fresh hold-out, and prints how many it dropped per file. It
only compares texts: the evaluation labels play no part, and nothing is tuned.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.router_data import (  # noqa: E402
    evaluation_prompts,
    near_copies,
    read_rows,
    training_files,
)


def main() -> None:
    evaluation = evaluation_prompts()
    for path in training_files():
        rows = read_rows(path)
        copies = near_copies([row["prompt"] for row in rows], evaluation)
        kept = [row for row, copy in zip(rows, copies, strict=True) if not copy]
        if len(kept) != len(rows):
            path.write_text(
                "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in kept), "utf-8"
            )
        print(f"{path.relative_to(ROOT)}: kept {len(kept)}, dropped {len(rows) - len(kept)}")


if __name__ == "__main__":
    main()
