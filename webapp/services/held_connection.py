"""A database connection one thread keeps from one transaction to the next, for work that commits often."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")


class HeldConnection:
    """Saves a pool checkout, its ping and its reset per transaction. A connection the database dropped (it
    restarted) is replaced, and the work tried once more on the new one."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.connection: Connection | None = None

    def transaction(self, work: Callable[[Session], T]) -> T:
        """`work` in a transaction of its own, committed if it returns."""
        try:
            return self._once(work)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            return self._once(work)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def _once(self, work: Callable[[Session], T]) -> T:
        if self.connection is None:
            self.connection = self.sessions.kw["bind"].connect()
        try:
            with self.sessions(bind=self.connection) as session, session.begin():
                return work(session)
        except Exception:
            if self.connection.invalidated:
                self.close()
            raise
