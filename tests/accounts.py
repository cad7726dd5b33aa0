"""Users and keys for tests: made straight in the database (hashing a password per test would cost seconds)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from webapp.db import transaction
from webapp.http.auth import SESSION_COOKIE, session_cookie
from webapp.models import Role, User
from webapp.services.accounts import PASSWORDS, AccountService, Principal

PASSWORD = "correct horse battery"
TEST_SECRET = b"test"  # the secret_key of the `settings` fixture


@cache
def _password_hash() -> str:
    return PASSWORDS.hash(PASSWORD)


@dataclass(frozen=True)
class Account:
    """A user with one API key; `principal` acts through the key."""

    principal: Principal
    key: str

    @property
    def name(self) -> str:
        return self.principal.name

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def add_account(sessions: sessionmaker[Session], name: str, role: str = Role.MEMBER) -> Account:
    """A user named `name` whose password is PASSWORD, with a fresh API key."""
    user = User(name=name, password_hash=_password_hash(), role=role)
    with transaction(sessions) as session:
        session.add(user)
    key = AccountService(sessions).create_key(user.id, "tests")
    return Account(Principal(user.id, name, role, user.session_version, key.id), key.secret)


def sign_in(client: TestClient, account: Account, secret: bytes = TEST_SECRET) -> TestClient:
    """The client as this user: a session cookie for the pages and the key for the API."""
    client.cookies.set(SESSION_COOKIE, session_cookie(secret, account.principal))
    client.headers.update(account.bearer)
    return client
