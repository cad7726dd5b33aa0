"""API keys are remembered by hash, for long, and forgotten within a second of a revocation in any process."""

from __future__ import annotations

import secrets

import pytest

from webapp.models import Role
from webapp.services import key_cache
from webapp.services.accounts import AccountService, key_digest
from webapp.services.key_cache import KEY_CACHE_SIZE, REVOCATION_CHECK_SECONDS
from webapp.services.models import ModelRegistry


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(key_cache.time, "monotonic", clock)
    return clock


def test_a_key_revoked_by_another_process_stops_working_within_the_check_period(
    registry: ModelRegistry, clock: Clock
) -> None:
    web, cli = AccountService(registry.sessions), AccountService(registry.sessions)
    user = cli.create_user("kim", secrets.token_urlsafe(12), Role.MEMBER)
    key = cli.create_key(user.user_id, "nightly")
    assert web.principal_for_key(key.secret) == web.cached_key(key.secret)[1] is not None

    clock.now += 60  # long past a second: still trusted once the generation is read again, unchanged
    assert web.cached_key(key.secret) == (False, None), "the generation is due to be read"
    assert web.principal_for_key(key.secret) is not None
    assert web.cached_key(key.secret)[0]

    cli.revoke_key(key.prefix)
    clock.now += REVOCATION_CHECK_SECONDS
    assert web.cached_key(key.secret) == (False, None)
    assert web.principal_for_key(key.secret) is None


def test_a_disabled_user_in_another_process_is_felt_too(registry: ModelRegistry, clock: Clock) -> None:
    web, cli = AccountService(registry.sessions), AccountService(registry.sessions)
    user = cli.create_user("lou", secrets.token_urlsafe(12), Role.MEMBER)
    key = cli.create_key(user.user_id, "k")
    assert web.principal_for_key(key.secret) is not None

    cli.set_disabled("lou", True)
    clock.now += REVOCATION_CHECK_SECONDS

    assert web.principal_for_key(key.secret) is None


def test_keys_are_remembered_by_hash_and_a_flood_of_unknown_keys_cannot_push_a_good_one_out(
    registry: ModelRegistry, clock: Clock
) -> None:
    accounts = AccountService(registry.sessions)
    user = accounts.create_user("max", secrets.token_urlsafe(12), Role.MEMBER)
    key = accounts.create_key(user.user_id, "k")
    accounts.principal_for_key(key.secret)
    unknown = [f"apot_{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}" for _ in range(KEY_CACHE_SIZE + 50)]
    for secret in unknown:
        assert accounts.principal_for_key(secret) is None

    remembered = [*accounts._keys._known, *accounts._keys._unknown]
    assert len(remembered) == 1 + KEY_CACHE_SIZE, "bounded"
    assert key.secret not in remembered and not set(unknown) & set(remembered), "never the key's own text"
    assert key_digest(key.secret) in remembered
    assert accounts.cached_key(key.secret)[0]
