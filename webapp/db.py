"""Engines and sessions. Built by whoever owns the process (the web lifespan, a worker process), never at import.

Every wait on the database has a deadline, so a database that hangs (a stopped server, a network that drops
packets silently) fails a request, a store or a reconciler pass within seconds, as one that is down does, and the
next attempt finds a fresh connection: connecting (`connect_timeout`), a pooled connection coming free
(`pool_timeout`), a statement the server works on too long (`statement_timeout`), a peer gone from the network
(TCP keepalives, `tcp_user_timeout`), and, for a server that takes the bytes but never answers, a deadline on every
wait for its answer (DeadlineConnection).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import orjson
import psycopg
from psycopg import errors
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 10_000
# The longest a statement may run: for a request someone waits on, and for the background (a worker's writes, a
# reconciler pass over a thousand rows), which nobody waits on and which a busy database may make slow.
STATEMENT_TIMEOUT_SECONDS = 5.0
BACKGROUND_STATEMENT_TIMEOUT_SECONDS = 30.0
# How much longer the client waits for any answer before it gives the connection up: a slow statement is cancelled
# cleanly by the server's statement timeout (a COMMIT's flush may take a moment more); only a hung server is cut
# off here.
ANSWER_MARGIN_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 5
POOL_TIMEOUT_SECONDS = 5.0
# libpq's TCP settings: a peer that stops acknowledging is dropped after ~10 s, an idle one probed after 10 s.
TCP_SETTINGS = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 3,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# Every job's inputs and result pass through JSON columns: orjson does it several times faster than json.
JSON_CODEC: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}


def make_engine(url: str, *, statement_timeout: float | None = STATEMENT_TIMEOUT_SECONDS) -> Engine:
    """An engine with the connection settings each backend needs to serve many processes at once. With
    `statement_timeout` None (migrations, which may rewrite large tables) statements may run as long as they need.
    A failed statement's error, logged with its traceback, never shows its parameters: they are users' inputs,
    password hashes and key digests."""
    pool = {"pool_timeout": POOL_TIMEOUT_SECONDS}
    if url.startswith("sqlite"):
        database = make_url(url).database
        in_memory = not database or database == ":memory:"  # one connection per thread, no pool to wait for
        if database and not in_memory:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # A local file does not hang; its one wait, for another writer's lock, is bounded by the busy timeout.
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False},
            hide_parameters=True,
            **({} if in_memory else pool),
            **JSON_CODEC,
        )
        event.listen(engine, "connect", _tune_sqlite)
        return engine
    given = make_url(url).query  # settings in the URL win
    defaults: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS, **TCP_SETTINGS}
    connect_args = {key: value for key, value in defaults.items() if key not in given}
    if statement_timeout is not None and "options" not in given:
        connect_args["options"] = f"-c statement_timeout={int(statement_timeout * 1000)}"
    # pre-ping: a database restart costs one failed checkout, not a 500 on every pooled connection
    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        connect_args=connect_args,
        hide_parameters=True,
        **pool,
        **JSON_CODEC,
    )
    if statement_timeout is not None and make_url(url).get_driver_name() == "psycopg":
        answer_timeout = statement_timeout + ANSWER_MARGIN_SECONDS

        @event.listens_for(engine, "do_connect")
        def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> psycopg.Connection[Any]:
            connection = DeadlineConnection.connect(*cargs, **cparams)
            connection.answer_timeout = answer_timeout
            return connection

    return engine


class DeadlineConnection(psycopg.Connection[Any]):
    """A psycopg connection that waits for the server at most `answer_timeout` seconds per operation, then closes:
    a server that is stopped or black-holed never answers, and its statement timeout cannot fire."""

    answer_timeout = STATEMENT_TIMEOUT_SECONDS + ANSWER_MARGIN_SECONDS

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        try:
            return super().wait(gen, interval, self.answer_timeout if timeout is None else timeout)
        except errors._WaitTimeout as exc:
            self.close()  # mid-protocol, it cannot be used again; closed, SQLAlchemy drops it from the pool
            raise psycopg.OperationalError(
                f"the database did not answer within {self.answer_timeout:g} s; connection closed"
            ) from exc


def _tune_sqlite(connection: Any, _record: Any) -> None:
    # WAL lets the web server read while a worker writes; the busy timeout makes writers wait their turn
    # instead of failing with "database is locked".
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is committed on success and rolled back on error."""
    with factory() as session, session.begin():
        yield session


@contextmanager
def pinned_session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that keeps one pooled connection across its transactions: one checkout (and pre-ping) for
    work that commits more than once, such as claiming jobs and then writing their results."""
    engine = factory.kw["bind"]
    with engine.connect() as connection, factory(bind=connection) as session:
        yield session


T = TypeVar("T")
log = logging.getLogger(__name__)
# Postgres rolled the transaction back whole (a deadlock's victim, a serialization failure): it may simply run again.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
RETRIES = 3


def retried_transaction(session: Session, work: Callable[[], T]) -> T:
    """`work` in a transaction of `session`, run again when Postgres chose it as a deadlock's victim: two workers
    claiming and finishing overlapping jobs can lock rows in opposite orders, and the victim's jobs would otherwise
    wait out their lease. `work` must be safe to run again after a rollback."""
    for attempt in range(1, RETRIES + 1):
        try:
            with session.begin():
                return work()
        except OperationalError as exc:
            sqlstate = getattr(exc.orig, "sqlstate", None)
            if sqlstate not in RETRYABLE_SQLSTATES or attempt == RETRIES:
                raise
            log.warning(
                "the database rolled a transaction back (%s); running it again (attempt %d)", sqlstate, attempt + 1
            )
    raise AssertionError("unreachable: the last attempt returns or raises")
