"""Run the baseline (one uvicorn process, one Celery worker with a process per CPU, Redis as broker and result
backend) for a benchmark, and the blog-post client's request: submit, then poll the result URL."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx2
import joblib
import redis

from ml.demo import train_penguins

REPO = Path(__file__).resolve().parents[2]
PENGUIN = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}
# The blog-post client's choice: poll the result URL every 10 ms until the task is done.
POLL_INTERVAL = 0.01
GIVE_UP_AFTER = 30.0
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class BaselineStack:
    base_url: str
    pids: dict[str, int]
    """Root pids of "web" and "worker"; a CpuMeter over them counts the Celery pool processes too."""


async def baseline_request(session: aiohttp.ClientSession, base_url: str, row: dict[str, Any]) -> None:
    """POST the row, then poll its result until SUCCESS; raise if the task failed or took over GIVE_UP_AFTER."""
    async with session.post(f"{base_url}/predict", json=row) as response:
        response.raise_for_status()
        task_id = (await response.json())["task_id"]
    deadline = time.perf_counter() + GIVE_UP_AFTER
    while time.perf_counter() < deadline:
        async with session.get(f"{base_url}/result/{task_id}") as response:
            response.raise_for_status()
            outcome = await response.json()
        if outcome["status"] == "SUCCESS":
            return
        if outcome["status"] == "FAILURE":
            raise RuntimeError(f"task {task_id} failed: {outcome['result']}")
        await asyncio.sleep(POLL_INTERVAL)
    raise TimeoutError(f"task {task_id} not done after {GIVE_UP_AFTER:.0f} s")


@contextmanager
def running_baseline(redis_url: str, root: Path) -> Iterator[BaselineStack]:
    """Web and worker processes serving the demo penguins model, warmed up; stopped and the Redis db flushed after.

    The Redis database is flushed at the end, so give it one that nothing else uses.
    """
    root.mkdir(parents=True, exist_ok=True)
    model_path = root / "model.joblib"
    joblib.dump(train_penguins()[0], model_path)
    env = {
        **os.environ,
        "BASELINE_REDIS_URL": redis_url,
        "BASELINE_MODEL_PATH": str(model_path),
        "BASELINE_QUEUE": f"baseline-{uuid.uuid4().hex[:8]}",
    }
    port = free_port()
    web_command = ["uvicorn", "bench.baseline.app:app", "--host", "127.0.0.1", "--port", str(port)]
    web_command += ["--no-access-log", "--log-level", "warning"]
    worker_command = ["celery", "-A", "bench.baseline.worker", "worker", "--concurrency", str(os.cpu_count() or 1)]
    worker_command += ["--loglevel", "WARNING", "-Q", env["BASELINE_QUEUE"]]
    with ExitStack() as cleanup:
        cleanup.callback(_flush, redis_url)
        web = cleanup.enter_context(_process(web_command, env, root / "web.log"))
        worker = cleanup.enter_context(_process(worker_command, env, root / "worker.log"))
        base_url = f"http://127.0.0.1:{port}"
        try:
            _warm_up(base_url, {"web": web, "worker": worker})
        except RuntimeError as error:
            raise RuntimeError(f"{error}; the logs are in {root}") from error
        yield BaselineStack(base_url, {"web": web.pid, "worker": worker.pid})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def _process(module_command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A `python -m` subprocess in its own session, so that stopping its process group stops its children too."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", *module_command],
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    # The group id is the root's pid (start_new_session); signal the group so that Celery's pool processes go too.
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(STOP_TIMEOUT)
    # Pool processes can outlive a root that exited on SIGTERM; whatever is left of the group is killed.
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _warm_up(base_url: str, processes: dict[str, subprocess.Popen[bytes]]) -> None:
    """Wait until one request has gone all the way through web, broker, worker and result backend."""
    deadline = time.monotonic() + START_TIMEOUT
    with httpx2.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            _check_alive(processes)
            try:
                task_id = client.post(f"{base_url}/predict", json=PENGUIN).raise_for_status().json()["task_id"]
            except httpx2.TransportError:
                time.sleep(0.1)
                continue
            while time.monotonic() < deadline:
                _check_alive(processes)
                if client.get(f"{base_url}/result/{task_id}").raise_for_status().json()["status"] == "SUCCESS":
                    return
                time.sleep(0.1)
    raise RuntimeError(f"the baseline did not answer a warm-up request within {START_TIMEOUT:.0f} s")


def _check_alive(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for role, process in processes.items():
        if process.poll() is not None:
            raise RuntimeError(f"the baseline's {role} process exited with {process.returncode}")


def _flush(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()
    finally:
        client.close()
