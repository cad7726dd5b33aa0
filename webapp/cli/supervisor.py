"""`apot run`: the embedded broker, a worker and the web server as children of one process, stopped together.

The children die with it however it ends: on SIGINT, SIGTERM or SIGHUP (a closed terminal) it stops them in order,
and if it is killed outright the kernel sends each of them SIGTERM (`die_with_parent`), so no stack is left running
unsupervised and the next `apot run` starts cleanly.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO

STOP_TIMEOUT_SECONDS = 20
RESPAWN_FIRST_PAUSE_SECONDS = 1.0
READY_TIMEOUT_SECONDS = 60
POLL_SECONDS = 0.05  # readiness is polled this often: a warm start takes a few seconds, each tenth of one counts

# Logged, not printed: in a container each of these is one more JSON line (APOT_LOG_FORMAT).
log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` that has Linux send the child SIGTERM when this process dies, even by SIGKILL (None
    elsewhere: there a killed `apot run` leaves its children to be stopped by hand)."""
    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()

    def in_child() -> None:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the request was made
            os.kill(os.getpid(), signal.SIGTERM)

    return in_child


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


@dataclass
class Supervisor:
    """Starts children in order, watches them, and stops them in reverse order on a signal or a death."""

    children: list[Child] = field(default_factory=list)
    stopping: bool = False

    def spawn(self, name: str, argv: Sequence[str], env: dict[str, str], output: IO[bytes] | None = None) -> None:
        """Start a child; its output goes to ours unless `output` is given."""
        # A session of its own: the terminal's Ctrl-C reaches only us, so we choose the stopping order.
        process = subprocess.Popen(
            list(argv), env=env, start_new_session=True, stdout=output, stderr=output, preexec_fn=die_with_parent()
        )
        self.adopt(name, process)

    def adopt(self, name: str, process: subprocess.Popen[bytes]) -> None:
        self.children.append(Child(name, process))

    def handle_signals(self) -> None:
        def request_stop(signum: int, _frame: object) -> None:
            self.stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGHUP, request_stop)  # the terminal closed: stop the children, do not orphan them

    def wait_until_ready(self, url: str, also: Callable[[], bool] = lambda: True) -> bool:
        """Poll `url` until it answers 200 and `also` holds; False if stopped, a child died, or time ran out."""
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline and not self.stopping and self.dead_child() is None:
            if also() and self.answers(url):
                return True
            time.sleep(POLL_SECONDS)
        return False

    @staticmethod
    def answers(url: str) -> bool:
        """Whether `url` answers 200 now."""
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except OSError:  # not listening yet, or a 503 (urllib raises HTTPError, an OSError)
            return False

    def dead_child(self) -> Child | None:
        return next((c for c in self.children if c.process.poll() is not None), None)

    def watch(self) -> int:
        """Block until a stop is requested (exit 0) or a child dies (exit 1)."""
        while not self.stopping:
            dead = self.dead_child()
            if dead is not None:
                log.error("%s exited with code %s; stopping", dead.name, dead.process.returncode)
                return 1
            time.sleep(0.2)
        return 0

    def stop_all(self) -> None:
        """Stop the last-started child first: web, then worker (finishing its tasks), then broker."""
        for child in reversed(self.children):
            if child.process.poll() is None:
                os.killpg(child.process.pid, signal.SIGTERM)
                try:
                    child.process.wait(STOP_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    log.warning("%s did not stop in time; killing it", child.name)
                    os.killpg(child.process.pid, signal.SIGKILL)
                    child.process.wait()


def keep_running(
    commands: Mapping[str, Sequence[str]],
    env: dict[str, str],
    start_when: Mapping[str, Callable[[], bool]] | None = None,
) -> int:
    """Run each command (by name) as a child and start it again whenever it dies on its own, until this process is
    told to stop. A command named in `start_when` first starts once its condition holds (the others meanwhile have
    the machine's cores to themselves).

    Celery's worker can exit on a broker connection lost at the wrong moment ("Unrecoverable error"); the
    jobs it held are safe (claims and the reconciler), but a worker must come back without an operator. The
    children stay in this process's group, so whatever stops the group (Ctrl-C, `apot run`) stops them too.
    """
    supervisor = Supervisor()
    supervisor.handle_signals()
    children: dict[str, subprocess.Popen[bytes]] = {}
    started: dict[str, float] = {}
    pause = dict.fromkeys(commands, RESPAWN_FIRST_PAUSE_SECONDS)
    due = dict.fromkeys(commands, 0.0)  # when each command is (re)started
    waits = start_when or {}
    try:
        while not supervisor.stopping:
            now = time.monotonic()
            for name, argv in commands.items():
                child = children.get(name)
                if child is None and now >= due[name] and (name not in waits or waits[name]()):
                    children[name], started[name] = (
                        subprocess.Popen(list(argv), env=env, preexec_fn=die_with_parent()),
                        now,
                    )
                elif child is not None and child.poll() is not None:
                    # A child that ran a good while gets a quick restart; one that keeps dying at once, a slower one.
                    ran = now - started[name]
                    pause[name] = RESPAWN_FIRST_PAUSE_SECONDS if ran > 60 else min(pause[name] * 2, 30.0)
                    log.warning(
                        "%s exited with code %s; starting it again in %.0f s", name, child.returncode, pause[name]
                    )
                    del children[name]
                    due[name] = now + pause[name]
            time.sleep(0.2)
    finally:
        for child in children.values():
            if child.poll() is None:
                child.terminate()  # a warm shutdown: tasks in hand finish first
        for child in children.values():
            try:
                child.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    return 0
