"""Sign-in limits: per (name, address) with pauses that grow, per address across names, per name across addresses
except from the name's usual addresses."""

from __future__ import annotations

from webapp.http.ratelimit import FREE_FAILURES, LONGEST_PAUSE_SECONDS, SignInLimits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_pair_gets_free_failures_then_pauses_that_double() -> None:
    clock = Clock()
    limits = SignInLimits(clock=clock)
    pauses = []
    for _ in range(FREE_FAILURES + 4):
        assert limits.retry_after("Ada", "203.0.113.7") is None
        limits.failed("Ada", "203.0.113.7")
        pauses.append(limits.retry_after("ada", "203.0.113.7"))
        clock.now += pauses[-1] or 0
    assert pauses == [None] * FREE_FAILURES + [2, 4, 8, 16]


def test_the_pause_has_a_cap_and_a_success_ends_it() -> None:
    clock = Clock()
    limits = SignInLimits(per_address="1000/minute", clock=clock)
    for _ in range(40):
        limits.failed("ada", "203.0.113.7")
    assert limits.retry_after("ada", "203.0.113.7") == LONGEST_PAUSE_SECONDS
    limits.succeeded("ada", "203.0.113.7")
    assert limits.retry_after("ada", "203.0.113.7") is None


def test_one_pairs_failures_do_not_slow_another_address_down() -> None:
    limits = SignInLimits(clock=Clock())
    for _ in range(FREE_FAILURES + 3):
        limits.failed("ada", "203.0.113.7")
    assert limits.retry_after("ada", "198.51.100.1") is None


def test_spraying_one_address_over_many_names_is_limited_per_address() -> None:
    limits = SignInLimits(per_address="3/minute", clock=Clock())
    for name in ("ada", "bob", "cleo"):
        limits.failed(name, "203.0.113.7")
    assert limits.retry_after("dan", "203.0.113.7") is not None
    assert limits.retry_after("dan", "198.51.100.1") is None


def test_guessing_one_name_from_many_addresses_stops_strangers_not_the_owner_at_home() -> None:
    limits = SignInLimits(per_name="3/hour", clock=Clock())
    limits.succeeded("ada", "198.51.100.1")  # where Ada signs in
    for address in ("203.0.113.7", "203.0.113.8", "203.0.113.9"):
        limits.failed("ada", address)
    assert limits.retry_after("ada", "203.0.113.10") is not None
    assert limits.retry_after("ada", "198.51.100.1") is None
