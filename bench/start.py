"""Warm `apot run` (what `make run` runs once installed): seconds from the command to its "apot is running at" line,
on an instance whose database, demo models and broker files exist from a first start.

CPU seconds are summed over the command and its children up to that line: on a busy machine the wall time grows
with the load, the CPU time much less, so both are printed, with the load average.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

from bench.baseline.stack import free_port
from bench.figures import Figure

BANNER = "apot is running at "
WARM_RUNS = 3


def start_once(home: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one `apot run` until its banner; stopped with Ctrl-C's signal after."""
    log = home / "run.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("APOT_")}
    env.update(APOT_HOME=str(home), APOT_PORT=str(free_port()))
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
        wall = time.perf_counter() - started
        tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
        cpu = sum(sum(p.cpu_times()[:4]) for p in tree if p.is_running())
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(60)
    return wall, cpu


def measure(root: Path) -> list[Figure]:
    root.mkdir(parents=True, exist_ok=True)
    first, _ = start_once(root)  # migrates, trains the demos, makes the admin
    warm = [start_once(root) for _ in range(WARM_RUNS)]
    wall = statistics.median(w for w, _ in warm)
    cpu = statistics.median(c for _, c in warm)
    load = os.getloadavg()[0]
    return [
        Figure(
            f"warm `apot run` (`make run`) to its 'running at' line, median of {WARM_RUNS}; load average {load:.1f}",
            f"{wall:.1f} s",
            f"{first:.1f} s (first start: migrate, train the demos)",
            f"{cpu:.1f} CPU s",
            "≤ 5 s on an idle machine",
        )
    ]
