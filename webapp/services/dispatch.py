"""What the web side asks the workers to do: a task name, the id it works on, and the Celery task id to use."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

SCORE_JOB = "apot.score_job"
SCORE_CHUNK = "apot.score_chunk"


@dataclass(frozen=True)
class Dispatch:
    task: str
    target: str
    task_id: str


Enqueue = Callable[[Sequence[Dispatch]], None]
"""Publishes tasks for committed rows; the one door from the web side to the broker (tests replace it)."""
