"""API keys are remembered by hash, forgotten within a second of a revocation in any process, and their last use
written at most once a minute."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event, select, update

from webapp.db import transaction
from webapp.models import ApiKey, Role, utcnow
from webapp.services import key_cache
from webapp.services.accounts import AccountService, key_digest
from webapp.services.key_cache import KEY_CACHE_SIZE, LAST_USED_SECONDS, REVOCATION_CHECK_SECONDS
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


def test_last_used_is_written_at_most_once_a_minute_per_key(registry: ModelRegistry, clock: Clock) -> None:
    accounts = AccountService(registry.sessions)
    user = accounts.create_user("noa", secrets.token_urlsafe(12), Role.MEMBER)
    key = accounts.create_key(user.user_id, "k")
    updates: list[str] = []
    event.listen(registry.sessions.kw["bind"], "before_cursor_execute", _record_updates(updates))

    assert accounts.principal_for_key(key.secret) is not None
    assert len(updates) == 1 and _last_used(registry, key.id) is not None
    first = _last_used(registry, key.id)
    for _ in range(100):  # a busy key within the minute: answered from memory, nothing written
        clock.now += 0.5
        assert accounts.principal_for_key(key.secret) is not None
    assert len(updates) == 1

    clock.now += LAST_USED_SECONDS  # looked up again, but another process wrote less than a minute ago
    _set_last_used(registry, key.id, utcnow() - timedelta(seconds=10))
    updates.clear()
    assert accounts.principal_for_key(key.secret) is not None
    assert updates == []

    clock.now += LAST_USED_SECONDS  # the stored time is older than a minute: one UPDATE
    _set_last_used(registry, key.id, utcnow() - timedelta(minutes=5))
    updates.clear()
    accounts.principal_for_key(key.secret)
    assert len(updates) == 1 and _last_used(registry, key.id) > first  # type: ignore[operator]


def _record_updates(updates: list[str]) -> Callable[..., None]:
    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("UPDATE API_KEYS"):
            updates.append(statement)

    return record


def _last_used(registry: ModelRegistry, key_id: uuid.UUID) -> datetime | None:
    with registry.sessions() as session:
        return session.scalar(select(ApiKey.last_used_at).where(ApiKey.id == key_id))


def _set_last_used(registry: ModelRegistry, key_id: uuid.UUID, moment: datetime) -> None:
    with transaction(registry.sessions) as session:
        session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=moment))
