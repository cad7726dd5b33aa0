"""Rate limits on job creation, per API key and per user, so one busy script cannot crowd out everyone else.

Counted in this web process's memory: no round trip per submission, and a broker or database that hangs cannot
hold submissions up here. With N web processes a user can reach N times the limit; the limit is a guard against
runaway scripts, not a quota. Submissions are counted with GCRA (a token bucket kept as one timestamp per key and
user): a few microseconds and a float whatever the limit, where the `limits` library's windows cost 40 to 140 µs a
hit (its moving window keeps and shifts a timestamp per submission). Sign-ins, rare, keep its exact moving window.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable

from fastapi import HTTPException, Request
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from webapp.services.accounts import Principal

MAX_TRACKED = 10_000


class SubmissionLimits:
    """`per_user` and `per_key` as the limits library writes them ("600/minute"); empty switches one off."""

    def __init__(self, per_user: str, per_key: str) -> None:
        self.per_user = Gcra(parse(per_user)) if per_user.strip() else None
        self.per_key = Gcra(parse(per_key)) if per_key.strip() else None

    def check(self, principal: Principal) -> None:
        """Count one submission; 429 with Retry-After when the key's or the user's limit is reached."""
        if principal.api_key_id is not None and self.per_key is not None:
            _count(self.per_key, "API key", principal.api_key_id)
        if self.per_user is not None:
            _count(self.per_user, "user", principal.user_id)


def _count(limit: Gcra, kind: str, identity: uuid.UUID) -> None:
    wait = limit.hit(identity)
    if wait is None:
        return
    retry_after = max(1, math.ceil(wait))
    raise HTTPException(
        429,
        f"too many jobs from this {kind}: at most {limit.item}; try again in {retry_after} s",
        headers={"Retry-After": str(retry_after), **ratelimit_headers(limit.item, retry_after)},
    )


class Gcra:
    """At most `item.amount` hits per `item` window for each identity, as a bucket of that many that refills
    evenly over the window: a full burst at once, then one every window/amount seconds."""

    def __init__(self, item: RateLimitItem) -> None:
        self.item = item
        self.interval = item.get_expiry() / item.amount
        self.tolerance = item.get_expiry() - self.interval
        self._due: dict[uuid.UUID, float] = {}  # when each identity's bucket is full again
        self._lock = threading.Lock()

    def hit(self, identity: uuid.UUID) -> float | None:
        """Count a hit: None if allowed, else the seconds until one would be."""
        now = time.monotonic()
        with self._lock:
            due = max(self._due.get(identity, now), now)
            if due - now > self.tolerance:
                return due - now - self.tolerance
            self._due[identity] = due + self.interval
            if len(self._due) > MAX_TRACKED:  # identities whose bucket refilled take no memory
                self._due = {key: when for key, when in self._due.items() if when > now}
        return None


def ratelimit_headers(item: RateLimitItem, reset_seconds: int) -> dict[str, str]:
    """The IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers) of a limit that was reached."""
    return {
        "RateLimit-Limit": str(item.amount),
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": str(reset_seconds),
        "RateLimit-Policy": f"{item.amount};w={item.get_expiry()}",
    }


# Failed sign-ins a (name, address) pair gets without delay; after them each failure doubles the pause, up to a cap.
FREE_FAILURES = 5
FIRST_PAUSE_SECONDS = 2.0
LONGEST_PAUSE_SECONDS = 15 * 60.0
# Pairs remembered (the oldest forgotten first), and each name's usual addresses (where it last signed in).
MAX_PAIRS = 100_000
USUAL_ADDRESSES = 5


class SignInLimits:
    """Failed sign-ins slow down who makes them, never the account's owner elsewhere: guessing takes years.

    - Per (name, address): FREE_FAILURES, then pauses that double with each failure (2 s, 4 s, ... 15 min), until
      a sign-in from that address succeeds.
    - Per address, whatever the names (spraying one password over many names): `per_address` failures.
    - Per name, whatever the address (guessing from many addresses): `per_name` failures, which hold only for
      addresses the account has not signed in from: the owner at their usual address is never locked out by
      someone else's guesses.
    Counted in this web process's memory: a restart forgets them, as it forgets usual addresses.
    """

    def __init__(
        self,
        per_address: str = "30/minute",
        per_name: str = "100/hour",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.per_address = parse(per_address)
        self.per_name = parse(per_name)
        self.clock = clock
        self._pairs: OrderedDict[tuple[str, str], tuple[int, float]] = OrderedDict()  # failures, paused until
        self._usual: dict[str, list[str]] = {}

    def retry_after(self, name: str, address: str) -> int | None:
        """The seconds to wait before this attempt may be checked, or None when it may be now."""
        name = name.lower()
        _, paused_until = self._pairs.get((name, address), (0, 0.0))
        waits = [paused_until - self.clock()]
        if not self.limiter.test(self.per_address, "address", address):
            waits.append(self._reset_in(self.per_address, "address", address))
        if address not in self._usual.get(name, []) and not self.limiter.test(self.per_name, "name", name):
            waits.append(self._reset_in(self.per_name, "name", name))
        longest = max(waits)
        return max(1, math.ceil(longest)) if longest > 0 else None

    def failed(self, name: str, address: str) -> None:
        name = name.lower()
        failures = self._pairs.pop((name, address), (0, 0.0))[0] + 1
        pause = 0.0 if failures <= FREE_FAILURES else FIRST_PAUSE_SECONDS * 2 ** (failures - FREE_FAILURES - 1)
        self._pairs[(name, address)] = (failures, self.clock() + min(pause, LONGEST_PAUSE_SECONDS))
        while len(self._pairs) > MAX_PAIRS:
            self._pairs.popitem(last=False)
        self.limiter.hit(self.per_address, "address", address)
        self.limiter.hit(self.per_name, "name", name)

    def succeeded(self, name: str, address: str) -> None:
        name = name.lower()
        self._pairs.pop((name, address), None)
        usual = [a for a in self._usual.get(name, []) if a != address]
        self._usual[name] = [address, *usual][:USUAL_ADDRESSES]

    def _reset_in(self, item: RateLimitItem, kind: str, identity: str) -> float:
        return self.limiter.get_window_stats(item, kind, identity).reset_time - time.time()


async def limit_submissions(request: Request) -> None:
    """Dependency of every route that creates jobs (after the route's authentication). Async because it does no
    I/O: FastAPI runs a plain function in a worker thread, and the hop cost more than the check."""
    request.app.state.submission_limits.check(request.state.principal)
