"""The API keys a web process has looked up, remembered by hash until a revocation anywhere makes them suspect."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from webapp.services.accounts import Principal

# How long one process remembers an unknown key while no key was revoked and no user disabled anywhere.
KEY_CACHE_SECONDS = 300.0
# How long it trusts a known key's lookup: the lookup after that also writes the key's "last used" time if the stored
# one is older (accounts.py), so a key in use costs one small SELECT and at most one UPDATE a minute, not one a request.
LAST_USED_SECONDS = 60.0
# How often a process asks the database whether that happened: a revoked key stops working everywhere within this.
REVOCATION_CHECK_SECONDS = 1.0
# Keys each process remembers, and unknown keys apart (a flood of wrong keys cannot push the good ones out).
KEY_CACHE_SIZE = 1024


class KeyCache:
    """A process's answers to key lookups, by the key's sha256 (never the key itself), least recently used out.

    Kept LAST_USED_SECONDS (unknown keys KEY_CACHE_SECONDS), trusted while the credentials generation read at most
    REVOCATION_CHECK_SECONDS ago is unchanged: a revocation anywhere is felt within about a second, and a busy
    process asks the database one small question a second instead of one lookup per key per second. Thread-safe:
    the event loop reads it, the lookups in worker threads fill it.
    """

    def __init__(self) -> None:
        self._known: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        self._unknown: OrderedDict[str, float] = OrderedDict()
        self._generation: tuple[int, int] | None = None
        self._checked_at = -math.inf
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()

    def stale(self) -> bool:
        return time.monotonic() - self._checked_at >= REVOCATION_CHECK_SECONDS

    def get(self, digest: str) -> tuple[bool, Principal | None]:
        now = time.monotonic()
        if now - self._checked_at >= REVOCATION_CHECK_SECONDS:
            return False, None
        with self._lock:
            known = self._known.get(digest)
            if known is not None and now - known[0] < LAST_USED_SECONDS:
                self._known.move_to_end(digest)
                return True, known[1]
            unknown = self._unknown.get(digest)
            if unknown is not None and now - unknown < KEY_CACHE_SECONDS:
                return True, None
        return False, None

    def put(self, digest: str, principal: Principal | None) -> None:
        now = time.monotonic()
        with self._lock:
            if principal is None:
                _remember(self._unknown, digest, now)
            else:
                _remember(self._known, digest, (now, principal))

    def refresh(self, read_generation: Callable[[], tuple[int, int]]) -> None:
        """Read the generation (one thread at a time; the others wait for its answer) and forget every key if it
        changed."""
        with self._refreshing:
            if not self.stale():
                return
            began = time.monotonic()
            generation = read_generation()
            with self._lock:
                if generation != self._generation:
                    self._known.clear()
                    self._unknown.clear()
                    self._generation = generation
                self._checked_at = began

    def forget(self) -> None:
        """This process changed credentials: nothing it remembers is trusted until the generation is read again."""
        with self._lock:
            self._known.clear()
            self._unknown.clear()
            self._checked_at = -math.inf


def _remember(cache: OrderedDict[str, Any], digest: str, value: Any) -> None:
    cache[digest] = value
    cache.move_to_end(digest)
    while len(cache) > KEY_CACHE_SIZE:
        cache.popitem(last=False)
