"""What the web side asks the workers to do: a task name, the ids it works on, and the Celery task id to use."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

# One message carries every small job that arrived together; the worker scores them with one call per model.
SCORE_JOBS = "apot.score_jobs"
SCORE_CHUNK = "apot.score_chunk"
DELIVER_WEBHOOK = "apot.deliver_webhook"


@dataclass(frozen=True)
class Dispatch:
    task: str
    targets: tuple[str, ...]  # the task's positional arguments: job ids, or one chunk id
    task_id: str
    countdown: float = 0.0  # seconds before a worker may run it (a webhook's retry)


Enqueue = Callable[[Sequence[Dispatch]], None]
"""Publishes tasks for committed rows; the one door from the web side to the broker (tests replace it)."""
