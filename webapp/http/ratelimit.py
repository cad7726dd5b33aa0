"""Rate limits on job creation, per API key and per user, so one busy script cannot crowd out everyone else.

Counted with the `limits` library's moving window in this web process's memory: no round trip per submission,
and a broker or database that hangs cannot hold submissions up here. With N web processes a user can reach N
times the limit; the limit is a guard against runaway scripts, not a quota.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from fastapi import HTTPException, Request
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from webapp.services.accounts import Principal


class SubmissionLimits:
    """`per_user` and `per_key` as the limits library writes them ("600/minute"); empty switches one off."""

    def __init__(self, per_user: str, per_key: str) -> None:
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.per_user = parse(per_user) if per_user.strip() else None
        self.per_key = parse(per_key) if per_key.strip() else None

    def check(self, principal: Principal) -> None:
        """Count one submission; 429 with Retry-After when the key's or the user's limit is reached."""
        if principal.api_key_id is not None and self.per_key is not None:
            self._hit(self.per_key, "key", str(principal.api_key_id))
        if self.per_user is not None:
            self._hit(self.per_user, "user", str(principal.user_id))

    def _hit(self, item: RateLimitItem, kind: str, identity: str) -> None:
        if self.limiter.hit(item, kind, identity):
            return
        reset = self.limiter.get_window_stats(item, kind, identity).reset_time
        retry_after = max(1, math.ceil(reset - time.time()))
        raise HTTPException(
            429,
            f"too many jobs from this {'API key' if kind == 'key' else 'user'}: at most {item}; "
            f"try again in {retry_after} s",
            headers={"Retry-After": str(retry_after), **ratelimit_headers(item, retry_after)},
        )


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
