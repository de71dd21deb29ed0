"""The task types and complexities of the pinned contract, named once."""

from __future__ import annotations

from typing import Literal, get_args

TaskType = Literal[
    "code",
    "math",
    "reasoning",
    "creative",
    "summarization",
    "translation",
    "extraction",
    "analysis",
    "chat",
]
Complexity = Literal["low", "medium", "high"]

TASK_TYPES: tuple[TaskType, ...] = get_args(TaskType)
COMPLEXITIES: tuple[Complexity, ...] = get_args(Complexity)
