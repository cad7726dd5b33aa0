"""Engines and sessions. Built by whoever owns the process (the web lifespan, a worker process), never at import."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 10_000


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# Every job's inputs and result pass through JSON columns: orjson does it several times faster than json.
JSON_CODEC: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}


def make_engine(url: str) -> Engine:
    """An engine with the connection settings each backend needs to serve many processes at once."""
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False}, **JSON_CODEC)
        event.listen(engine, "connect", _tune_sqlite)
        return engine
    # pre-ping: a database restart costs one failed checkout, not a 500 on every pooled connection
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, **JSON_CODEC)


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
