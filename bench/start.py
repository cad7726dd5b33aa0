"""Warm `apot run` (what `make run` runs once installed), on an instance whose database, demo models and broker files
exist from a first start: seconds from the command until it is ready.

Ready is what a person can do with it: a job submitted is scored. `apot run` prints its "apot is running at" line once
/readyz answers 200 and a worker takes jobs; the bench submits a job the moment that line appears (`Prefer: wait`) and
stops the clock at the answer, so both the line and the job are timed.

CPU seconds are summed over the command and its children up to the scored job: on a busy machine the wall time grows
with the load, the CPU time much less, so both are printed, with the load average.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx2
import psutil

from bench.baseline.stack import free_port
from bench.figures import Figure

BANNER = "apot is running at "
WARM_RUNS = 3
SCORED_TIMEOUT_SECONDS = 120
PENGUIN = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}


@dataclass(frozen=True)
class Start:
    banner: float  # wall seconds to the "apot is running at" line
    scored: float  # wall seconds to the answer of a job submitted at that line
    cpu: float  # CPU seconds of the command and its children until then


def start_once(home: Path, key: str | None) -> Start:
    """One `apot run` until its banner and, given an API key, a job scored; stopped with Ctrl-C's signal after."""
    log = home / "run.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("APOT_")}
    port = free_port()
    env.update(APOT_HOME=str(home), APOT_PORT=str(port))
    started = time.perf_counter()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "webapp.cli", "run"], env=env, stdout=out, stderr=subprocess.STDOUT, cwd="/"
        )
    try:
        while BANNER not in log.read_text(errors="replace"):
            if process.poll() is not None:
                raise RuntimeError(f"apot run exited with {process.returncode}:\n{log.read_text()[-2000:]}")
            time.sleep(0.02)
        banner = time.perf_counter() - started
        if key is not None:
            score_one(f"http://127.0.0.1:{port}", key)
        scored = time.perf_counter() - started
        tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
        cpu = sum(sum(p.cpu_times()[:4]) for p in tree if p.is_running())
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(60)
    return Start(banner, scored, cpu)


def score_one(base_url: str, key: str) -> None:
    """Submit a job and wait for its end (an `apot run` that says it is running before a worker is up takes longer
    than one `Prefer: wait`)."""
    auth = {"Authorization": f"Bearer {key}"}
    body = {"model": "penguins", "inputs": PENGUIN}
    job = httpx2.post(f"{base_url}/api/v1/jobs", json=body, headers={"Prefer": "wait=30", **auth}, timeout=40).json()
    deadline = time.monotonic() + SCORED_TIMEOUT_SECONDS
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        job = httpx2.get(job["url"], params={"wait": 30}, headers=auth, timeout=40).json()
    if job["status"] != "succeeded":
        raise RuntimeError(f"the first job after the 'running at' line was not scored: {job}")


def api_key(home: Path) -> str:
    """A key of the admin the first start made (`apot keys create`, on the same instance)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("APOT_")}
    env["APOT_HOME"] = str(home)
    command = [sys.executable, "-m", "webapp.cli", "keys", "create", "admin"]
    created = subprocess.run(command, env=env, cwd="/", capture_output=True, text=True, timeout=60, check=True)
    return created.stdout.splitlines()[-1]


def measure(root: Path) -> list[Figure]:
    root.mkdir(parents=True, exist_ok=True)
    first = start_once(root, None)  # migrates, trains the demos, makes the admin
    key = api_key(root)
    warm = [start_once(root, key) for _ in range(WARM_RUNS)]
    load = os.getloadavg()[0]
    return [
        Figure(
            f"warm `apot run` (`make run`) until a job submitted at its 'running at' line is scored, median of "
            f"{WARM_RUNS}; load average {load:.1f}",
            f"{statistics.median(s.scored for s in warm):.1f} s",
            f"{first.banner:.1f} s (first start to its line: migrate, train the demos)",
            f"{statistics.median(s.cpu for s in warm):.1f} CPU s",
            "≤ 5 s on an idle machine",
        ),
        Figure(
            "warm `apot run` to its 'running at' line (/readyz 200 and a worker taking jobs)",
            f"{statistics.median(s.banner for s in warm):.1f} s",
        ),
    ]
