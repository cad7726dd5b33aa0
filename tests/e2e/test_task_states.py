"""What Flower sees of apot's jobs on each stack: a job that fails ends its Celery task in FAILURE, a job that
succeeds in SUCCESS, and a failure is neither retried nor scored again.

Flower keeps task states from the workers' task events, in a `celery.events.state.State` (its own state class is
one); the test keeps one the same way, fed by an event receiver on the stack's broker. apot has no result backend
(the job row is the result), so events are what Flower, `celery events` and any monitor read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from celery import Celery
from celery.events.state import State

from tests.e2e.test_pipeline import GENTOO, submit, wait
from tests.models import Trained
from tests.stacks import Stack

# Declared to take "purple", which its encoder never saw: the row passes validation and fails inside the model.
TOO_TRUSTING = {
    "features": [
        {"name": "size", "type": "number", "required": True},
        {"name": "colour", "type": "category", "required": True, "choices": ["blue", "purple", "red"]},
    ]
}


@dataclass
class Monitor:
    state: State
    seen: list[tuple[str, str]] = field(default_factory=list)  # (event type, task id) of every task event

    def event(self, event: dict[str, Any]) -> None:
        if "uuid" in event:
            self.seen.append((event["type"], event["uuid"]))
        self.state.event(event)


@pytest.fixture(scope="module")
def events(stack: Stack) -> Iterator[Monitor]:
    """The task states a Flower on the stack's broker would show, from now on."""
    app = Celery("monitor", broker=stack.broker_url)
    monitor = Monitor(app.events.State())
    state = monitor.state
    with app.connection() as connection:
        receiver = app.events.Receiver(connection, handlers={"*": monitor.event})
        listening = threading.Thread(target=receiver.capture, kwargs={"wakeup": True}, daemon=True)
        listening.start()
        try:
            # Capturing once a worker has answered the wake-up: events sent from here on are seen.
            until(lambda: state.workers, "a worker heartbeat")
            yield monitor
        finally:
            receiver.should_stop = True
            listening.join(10)
    app.close()


def until(condition: Any, what: str, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.1)
    pytest.fail(f"no {what} within {seconds} s")


def test_a_job_that_fails_ends_its_task_in_failure_once(
    stack: Stack, events: Monitor, trained_models: dict[str, Trained]
) -> None:
    if "trusting" not in {m.name for m in stack.models.all_models()}:
        stack.models.register(trained_models["sizes"].data, "joblib", "trusting", metadata=TOO_TRUSTING)
    failed = wait(stack, submit(stack, {"size": 2, "colour": "purple"}, model="trusting"))
    succeeded = wait(stack, submit(stack, GENTOO))

    task = until(lambda: _ended(events.state, failed["task_id"]), "event of the failed job's task")
    assert failed["status"] == "failed"
    assert (task.name, task.state) == ("apot.score_jobs", "FAILURE")
    assert failed["id"] in task.exception and "purple" in task.exception, "Flower's exception column names them"
    assert until(lambda: _ended(events.state, succeeded["task_id"]), "the good job's task").state == "SUCCESS"
    time.sleep(3)  # time for a redelivery or a retry, should either happen
    again = httpx2.get(failed["url"], headers=stack.auth, timeout=10).json()
    assert (again["status"], again["finished_at"], again["error"]) == ("failed", failed["finished_at"], failed["error"])
    kinds = sorted(kind for kind, task_id in events.seen if task_id == failed["task_id"])
    assert kinds == ["task-failed", "task-received", "task-sent", "task-started"], (
        "taken once, failed once: not retried, not delivered again"
    )


def test_the_chunk_that_fails_a_csv_job_ends_its_task_in_failure(stack: Stack, events: Monitor, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("island,bill_length_mm,flipper_length_mm\nBiscoe,48.6,230\nDream,abc,196\n")
    created = upload_failing(stack, path)
    job = wait(stack, created)

    assert (job["status"], job["rows_failed"]) == ("failed", 1)
    failed_chunks = until(
        lambda: [
            t
            for t in events.state.tasks.values()
            if t.name == "apot.score_chunk" and t.state == "FAILURE" and job["id"] in (t.exception or "")
        ],
        "failed chunk task",
    )
    assert "'abc' is not a number" in failed_chunks[0].exception


def upload_failing(stack: Stack, path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        response = httpx2.post(
            f"{stack.base_url}/api/v1/jobs/csv",
            files={"file": (path.name, f, "text/csv")},
            data={"model": "penguins", "on_error": "fail"},
            headers=stack.auth,
            timeout=60,
        )
    assert response.status_code == 202, response.text
    return dict(response.json())


def _ended(state: State, task_id: str) -> Any:
    task = state.tasks.get(task_id)
    return task if task is not None and task.state in ("SUCCESS", "FAILURE") else None
