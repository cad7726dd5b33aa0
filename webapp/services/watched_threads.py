"""Threads that must keep running: one that ends is started again, one that stays busy too long is reported.

A Python thread cannot be stopped from outside, so a stuck one is handed to `on_stuck`, whose job is to end the
process for whatever supervises it to start a fresh one. The web's job intake runs on these threads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

# How often the watcher looks at the threads.
WATCH_EVERY_SECONDS = 1.0


class WatchedThreads:
    def __init__(
        self,
        loops: dict[str, Callable[[], None]],
        *,
        stuck_after: float,
        on_stuck: Callable[[str], None] | None = None,
    ) -> None:
        self.loops = loops
        self.stuck_after = stuck_after
        self.on_stuck = on_stuck
        self._threads: dict[str, threading.Thread] = {}
        self._busy_since: dict[str, float] = {}
        self._stopping = threading.Event()

    def start(self) -> None:
        for name in self.loops:
            self._start(name)
        threading.Thread(target=self._watch, name="apot-watch-threads", daemon=True).start()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the loops to return (at most `timeout` for each); none is started again meanwhile."""
        self._stopping.set()
        for thread in self._threads.values():
            thread.join(timeout)

    def problem(self) -> str | None:
        """Why the threads cannot do their work now (one ended, or is stuck), or None."""
        for name, thread in self._threads.items():
            if not thread.is_alive():
                return f"{name} has ended"
            busy = time.monotonic() - self._busy_since.get(name, time.monotonic())
            if busy > self.stuck_after:
                return f"{name} has been busy with one piece of work for {busy:.0f} s"
        return None

    @contextmanager
    def busy(self, name: str) -> Iterator[None]:
        """Around one piece of work of thread `name`: what the watcher times."""
        self._busy_since[name] = time.monotonic()
        try:
            yield
        finally:
            self._busy_since.pop(name, None)

    def _start(self, name: str) -> None:
        self._busy_since.pop(name, None)
        self._threads[name] = threading.Thread(target=self.loops[name], name=name, daemon=True)
        self._threads[name].start()

    def _watch(self) -> None:
        while not self._stopping.wait(WATCH_EVERY_SECONDS):
            for name, thread in list(self._threads.items()):
                if not thread.is_alive() and not self._stopping.is_set():
                    log.error("the thread %s ended; starting it again", name)
                    self._start(name)
            problem = self.problem()
            if problem is not None and self.on_stuck is not None:
                log.critical("stuck: %s", problem)
                self.on_stuck(problem)
                return
