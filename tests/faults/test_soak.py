"""A bounded chaos soak: 500 jobs submitted while 20 faults hit the web, the workers and the broker (killed, flushed,
hung); every accepted job ends, none is lost, none is stored twice. The figures are written to
test-output/soak.json for the closing notes."""

from __future__ import annotations

import json
import random
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
from sqlalchemy import func, select

from tests.faults.harness import FaultStack
from webapp.models import Job

JOBS = 500
FAULTS = 20
CLIENTS = 4
SECONDS_BETWEEN_FAULTS = 1.5
SECONDS_BETWEEN_SUBMISSIONS = 0.2  # per client: the submissions last as long as the faults
GIVE_UP_SUBMITTING_AFTER = 120.0
SEED = 7
REPORT = Path(__file__).resolve().parents[2] / "test-output" / "soak.json"

GENTOO = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}


def faults(stack: FaultStack) -> dict[str, Callable[[], None]]:
    def kill_a_pool_process() -> None:
        children = stack.pool_children()
        if children:
            random.choice(children).send_signal(signal.SIGKILL)

    def kill_the_workers() -> None:
        stack.kill_workers()
        stack.start_worker()

    def restart_redis() -> None:
        stack.broker.stop()
        time.sleep(0.5)
        stack.broker.start()

    def pause_redis() -> None:
        stack.broker.pause()
        time.sleep(1.0)
        stack.broker.resume()

    def hang_redis() -> None:  # longer than a publish may take: the web gives up on it and goes on
        stack.broker.pause()
        time.sleep(3.0)
        stack.broker.resume()

    return {
        "kill a pool process": kill_a_pool_process,
        "kill every worker process, start a new one": kill_the_workers,
        "restart redis (its queue is lost)": restart_redis,
        "flush redis": stack.broker.flushall,
        "pause redis for a second": pause_redis,
        "hang redis for 3 s": hang_redis,
        "kill the web server, start another": stack.kill_web,
    }


def test_every_accepted_job_ends_once_whatever_fails(stack: FaultStack) -> None:
    chaos = random.Random(SEED)
    accepted: dict[str, str] = {}  # Idempotency-Key → job id
    answers: Counter[str] = Counter()
    lock = threading.Lock()

    def client(keys: list[str]) -> None:
        for key in keys:
            deadline = time.monotonic() + GIVE_UP_SUBMITTING_AFTER
            while time.monotonic() < deadline:  # a client retries with the same key until it is answered
                try:
                    response = stack.submit(GENTOO, key=key, timeout=10)
                except httpx2.TransportError as exc:
                    with lock:
                        answers[type(exc).__name__] += 1
                    continue
                with lock:
                    answers[str(response.status_code)] += 1
                if response.status_code == 202:
                    with lock:
                        accepted[key] = response.json()["id"]
                    break
                time.sleep(0.2)
            time.sleep(SECONDS_BETWEEN_SUBMISSIONS)

    keys = [str(uuid.uuid4()) for _ in range(JOBS)]
    injected: Counter[str] = Counter()
    choices = faults(stack)
    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        submitting = [pool.submit(client, keys[n::CLIENTS]) for n in range(CLIENTS)]
        for _ in range(FAULTS):
            time.sleep(SECONDS_BETWEEN_FAULTS)
            name = chaos.choice(list(choices))
            choices[name]()
            injected[name] += 1
        for future in submitting:
            future.result()
    statuses = stack.wait_until_all_ended(timeout=240)
    settled = time.monotonic() - started

    with stack.engine.connect() as connection:
        rows = connection.scalar(select(func.count()).select_from(Job))
        attempts = Counter(a for (a,) in connection.execute(select(Job.attempts)))
        failed = connection.execute(select(Job.error).where(Job.error.is_not(None)))
        errors = Counter((error or "").split(":")[0] for (error,) in failed)
    figures = {
        "submitted": JOBS,
        "accepted": len(accepted),
        "job rows": rows,
        "terminal": sum(statuses.values()),
        "lost": len(accepted) - sum(statuses.values()),
        "duplicates": (rows or 0) - len(set(accepted.values())),
        "statuses": statuses,
        "attempts": dict(sorted(attempts.items())),
        "errors": dict(errors),
        "answers": dict(answers),
        "faults": dict(injected),
        "seconds": round(settled, 1),
    }
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(figures, indent=2))

    assert len(accepted) == JOBS, figures
    assert rows == JOBS and figures["duplicates"] == 0, figures
    assert figures["lost"] == 0, figures
    assert set(statuses) <= {"succeeded", "failed"} and set(errors) <= {"worker_lost"}, figures
