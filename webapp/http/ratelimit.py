"""Rate limits on job creation, per API key and per user, so one busy script cannot crowd out everyone else.

Counted with the `limits` library's moving window in this web process's memory: no round trip per submission,
and a broker or database that hangs cannot hold submissions up here. With N web processes a user can reach N
times the limit; the limit is a guard against runaway scripts, not a quota.
"""

from __future__ import annotations

import math
import time

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


class SignInLimits:
    """Sign-in attempts per account name and per client address: guessing passwords takes years, not hours."""

    def __init__(self, per_name: str = "10/minute", per_address: str = "30/minute") -> None:
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.per_name = parse(per_name)
        self.per_address = parse(per_address)

    def retry_after(self, name: str, address: str) -> int | None:
        """Count one attempt; the seconds to wait when there were too many, else None."""
        for item, kind, identity in ((self.per_name, "name", name.lower()), (self.per_address, "address", address)):
            if not self.limiter.hit(item, kind, identity):
                reset = self.limiter.get_window_stats(item, kind, identity).reset_time
                return max(1, math.ceil(reset - time.time()))
        return None


async def limit_submissions(request: Request) -> None:
    """Dependency of every route that creates jobs (after the route's authentication). Async because it does no
    I/O: FastAPI runs a plain function in a worker thread, and the hop cost more than the check."""
    request.app.state.submission_limits.check(request.state.principal)
