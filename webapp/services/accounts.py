"""Users and API keys: who may sign in, who a key speaks for, and the secrets that prove it."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from pwdlib import PasswordHash
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from webapp.db import transaction
from webapp.models import ApiKey, Role, User, utcnow
from webapp.services.key_cache import LAST_USED_SECONDS, KeyCache

log = logging.getLogger(__name__)

# Argon2id with pwdlib's recommended parameters.
PASSWORDS = PasswordHash.recommended()


@cache
def unknown_user_hash() -> str:
    """A hash to check against when the name is unknown, so a wrong name takes as long as a wrong password. Made
    on first use, not at import: every apot process and command imports this module, and a hash takes ~0.5 s."""
    return PASSWORDS.hash(secrets.token_urlsafe(16))


USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD_LENGTH = 8
KEY_PREFIX = "apot_"


class AccountError(ValueError):
    """A request about accounts that cannot be carried out; the message says why."""


class WrongPassword(AccountError):
    """The password given as the current one is not: counted as a failed sign-in."""


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: a user, and the API key it came with (None: a signed-in browser)."""

    user_id: uuid.UUID
    name: str
    role: str
    session_version: int
    api_key_id: uuid.UUID | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def owner_scope(self) -> uuid.UUID | None:
        """The owner whose jobs this principal may see; None means every job (admins)."""
        return None if self.is_admin else self.user_id


@dataclass(frozen=True)
class NewKey:
    """A key just made: `secret` is shown once and never stored."""

    id: uuid.UUID
    name: str
    prefix: str
    secret: str


def _principal(user: User, api_key_id: uuid.UUID | None = None) -> Principal:
    return Principal(user.id, user.name, user.role, user.session_version, api_key_id)


def key_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_password() -> str:
    return secrets.token_urlsafe(12)


class AccountService:
    """One per process; the pages, the API's authentication and `apot users`/`apot keys` all go through it."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self._keys = KeyCache()

    # --- users -------------------------------------------------------------------------------------------------

    def create_user(self, name: str, password: str, role: str = Role.MEMBER) -> Principal:
        """A new user; names are unique, passwords at least MIN_PASSWORD_LENGTH characters."""
        if not USER_NAME.match(name):
            raise AccountError(
                "a user name is 1 to 64 letters, digits, '.', '_', '@' or '-', starting with one of the first two"
            )
        if role not in (Role.ADMIN, Role.MEMBER):
            raise AccountError(f"the role must be admin or member, not {role!r}")
        _check_password(password)
        user = User(name=name, password_hash=PASSWORDS.hash(password), role=role)
        try:
            with transaction(self.sessions) as session:
                session.add(user)
        except IntegrityError as exc:
            raise AccountError(f"there is already a user named {name}") from exc
        return _principal(user)

    def ensure_first_admin(self, name: str = "admin") -> str | None:
        """With no users at all, make an admin and return its password (to be shown once); else None."""
        with self.sessions() as session:
            if session.scalar(select(func.count()).select_from(User)):
                return None
        password = new_password()
        try:
            self.create_user(name, password, Role.ADMIN)
        except AccountError:  # another process made it first
            return None
        return password

    def users(self) -> list[User]:
        """Every user, by name."""
        with self.sessions() as session:
            return list(session.scalars(select(User).order_by(User.name)))

    def get_user(self, name: str) -> User:
        with self.sessions() as session:
            user = session.scalars(select(User).where(User.name == name)).one_or_none()
        if user is None:
            raise AccountError(f"there is no user named {name}")
        return user

    def authenticate(self, name: str, password: str) -> Principal | None:
        """The user, if the name and password match an enabled account."""
        with self.sessions() as session:
            user = session.scalars(select(User).where(User.name == name)).one_or_none()
        valid, new_hash = PASSWORDS.verify_and_update(password, user.password_hash if user else unknown_user_hash())
        if user is None or not valid or user.disabled:
            return None
        with transaction(self.sessions) as session:
            values: dict[str, object] = {"last_login_at": utcnow()}
            if new_hash:  # the parameters were raised since it was hashed
                values["password_hash"] = new_hash
            session.execute(update(User).where(User.id == user.id).values(**values))
        return _principal(user)

    def session_user(self, user_id: uuid.UUID, session_version: int) -> Principal | None:
        """The user a session cookie names, while the account is enabled and the session not ended."""
        with self.sessions() as session:
            user = session.get(User, user_id)
        if user is None or user.disabled or user.session_version != session_version:
            return None
        return _principal(user)

    def set_disabled(self, name: str, disabled: bool) -> None:
        """Disable (or enable again) an account: its sessions end and its keys stop working at once."""
        self._change(name, disabled=disabled, session_version=User.session_version + 1)

    def reset_password(self, name: str, password: str | None = None) -> str:
        """Set a new password (a random one when none is given) and end the user's sessions; returns it."""
        password = password or new_password()
        _check_password(password)
        self._change(name, password_hash=PASSWORDS.hash(password), session_version=User.session_version + 1)
        return password

    def change_password(self, user_id: uuid.UUID, current: str, new: str) -> Principal:
        """The user's own change: `current` must be their password. Every session ends, this one too; the returned
        principal (its new session version) signs this browser in again. API keys keep working: revoke those
        separately (the keys page) if they may have leaked too."""
        with self.sessions() as session:
            user = session.get(User, user_id)
        if user is None or user.disabled or not PASSWORDS.verify(current, user.password_hash):
            raise WrongPassword("that is not your current password")
        _check_password(new)
        if new == current:
            raise AccountError("the new password is the same as the current one")
        self._change(user.name, password_hash=PASSWORDS.hash(new), session_version=User.session_version + 1)
        return Principal(user.id, user.name, user.role, user.session_version + 1)

    def end_sessions(self, user_id: uuid.UUID) -> None:
        """Sign the user out everywhere (the sign-out button)."""
        with transaction(self.sessions) as session:
            session.execute(update(User).where(User.id == user_id).values(session_version=User.session_version + 1))

    def _change(self, name: str, **values: object) -> None:
        with transaction(self.sessions) as session:
            changed = session.execute(update(User).where(User.name == name).values(**values)).rowcount  # type: ignore[attr-defined]
        if not changed:
            raise AccountError(f"there is no user named {name}")
        self._keys.forget()

    # --- API keys ----------------------------------------------------------------------------------------------

    def create_key(self, user_id: uuid.UUID, name: str) -> NewKey:
        """A new key for the user; the returned secret is the only copy."""
        name = name.strip()
        if not name:
            raise AccountError("give the key a name, such as the script that will use it")
        if len(name) > 64:
            raise AccountError("a key's name is at most 64 characters")
        prefix = secrets.token_hex(4)
        secret = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        key = ApiKey(user_id=user_id, name=name, prefix=prefix, sha256=key_digest(secret))
        with transaction(self.sessions) as session:
            session.add(key)
        return NewKey(key.id, name, prefix, secret)

    def keys(self, user_id: uuid.UUID) -> list[ApiKey]:
        """The user's keys, newest first, revoked ones included."""
        with self.sessions() as session:
            query = select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at.desc())
            return list(session.scalars(query))

    def revoke_key(self, prefix: str, user_id: uuid.UUID | None = None) -> None:
        """Revoke a key by its prefix; with `user_id`, only if it is that user's."""
        query = update(ApiKey).where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
        if user_id is not None:
            query = query.where(ApiKey.user_id == user_id)
        with transaction(self.sessions) as session:
            revoked = session.execute(query.values(revoked_at=utcnow())).rowcount  # type: ignore[attr-defined]
        if not revoked:
            raise AccountError(f"no key in use starts with {prefix}")
        self._keys.forget()

    def cached_key(self, secret: str) -> tuple[bool, Principal | None]:
        """(True, the answer) when this process knows the key and checked for revocations less than
        REVOCATION_CHECK_SECONDS ago; no I/O, for the event loop."""
        return self._keys.get(key_digest(secret))

    def principal_for_key(self, secret: str) -> Principal | None:
        """Who a presented key speaks for, or None for an unknown, malformed or revoked key (or a disabled user)."""
        if self._keys.stale():
            self._keys.refresh(self._credentials_generation)
        digest = key_digest(secret)
        hit, principal = self._keys.get(digest)
        if hit:
            return principal
        parts = secret.split("_", 2)  # the random part may contain "_" too
        if len(parts) != 3 or f"{parts[0]}_" != KEY_PREFIX or len(parts[1]) != 8:
            return None
        with self.sessions() as session:
            found = session.execute(
                select(ApiKey, User).join(User, User.id == ApiKey.user_id).where(ApiKey.prefix == parts[1])
            ).one_or_none()
        if found is not None:
            key, user = found
            # Compared in constant time: the lookup by prefix reveals nothing about the rest of the key.
            if hmac.compare_digest(key.sha256, digest) and key.revoked_at is None and not user.disabled:
                principal = _principal(user, key.id)
                self._note_use(key)
        self._keys.put(digest, principal)
        return principal

    def _note_use(self, key: ApiKey) -> None:
        """Store that the key was used now, unless the stored time is less than LAST_USED_SECONDS old: a key in use
        is looked up about once a minute (the cache forgets it then), so this is at most one UPDATE per key per
        minute in a process, on the lookup's worker thread, and other processes skip it when one of them just wrote.
        Best effort: a failed write never refuses the request."""
        now = utcnow()
        if key.last_used_at is not None and now - key.last_used_at < timedelta(seconds=LAST_USED_SECONDS):
            return
        try:
            with transaction(self.sessions) as session:
                session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
        except SQLAlchemyError:
            log.warning("could not store when the key apot_%s_… was last used", key.prefix, exc_info=True)

    def _credentials_generation(self) -> tuple[int, int]:
        """Grows whenever any key is revoked or any user disabled, given a new password or signed out (each raises
        the user's session version), in whichever process: the key cache starts again when it changes."""
        with self.sessions() as session:
            revoked = session.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_not(None)))
            versions = session.scalar(select(func.coalesce(func.sum(User.session_version), 0)))
        return int(revoked or 0), int(versions or 0)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
