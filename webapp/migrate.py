"""Run Alembic from code, so `apot migrate`, `apot run` and the tests share one way to build the schema.

Alembic itself (and the migration scripts, which import the models) is imported only when there is something to
migrate: a warm `apot run` and each web process's readiness check read the code's head from the scripts' text.
"""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

from webapp.config import SQLITE_PREFIX

if TYPE_CHECKING:
    from alembic.config import Config

ROOT = Path(__file__).resolve().parent.parent
ALEMBIC_INI = ROOT / "alembic.ini"
VERSIONS_DIR = ROOT / "migrations" / "versions"
# The two assignments every script in migrations/versions/ makes (script.py.mako writes them).
REVISION = re.compile(r"^revision(?:: [^=]+)? = (.+)$", re.MULTILINE)
DOWN_REVISION = re.compile(r"^down_revision(?:: [^=]+)? = (.+)$", re.MULTILINE)
QUOTED = re.compile(r"['\"](\w+)['\"]")


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    config = Config(str(ALEMBIC_INI))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


def upgrade_to_head(database_url: str) -> None:
    """Bring the database to the newest schema; a no-op when it is already there."""
    from alembic import command

    command.upgrade(alembic_config(database_url), "head")


def upgrade_if_behind(database_url: str) -> None:
    """`upgrade_to_head`, after one cheap query says the database is not at the head already (a warm start)."""
    if database_revisions(database_url) != head_revisions():
        upgrade_to_head(database_url)


def database_revisions(database_url: str) -> set[str]:
    """The revisions the database records (none for a new or empty one)."""
    path = database_url.removeprefix(SQLITE_PREFIX)
    if database_url.startswith(SQLITE_PREFIX) and path.startswith("/") and "?" not in path:
        return _sqlite_revisions(Path(path))
    from sqlalchemy import inspect, text

    from webapp.db import make_engine

    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return set()
            return set(connection.scalars(text("SELECT version_num FROM alembic_version")))
    finally:
        engine.dispose()


def _sqlite_revisions(path: Path) -> set[str]:
    """`database_revisions` of a SQLite file (`apot run`'s default), read by the standard library: SQLAlchemy's import
    would be the slowest part of a warm start's check."""
    if not path.exists():
        return set()
    try:
        with closing(sqlite3.connect(path)) as connection:
            return {row[0] for row in connection.execute("SELECT version_num FROM alembic_version")}
    except sqlite3.Error:  # no such table (a new database), or locked: Alembic will see
        return set()


def head_revisions() -> set[str]:
    """The revisions the code's migration scripts end at: where `upgrade_to_head` takes a database (read from the
    scripts' text, as Alembic's ScriptDirectory would find them by importing each; a test checks both agree)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in VERSIONS_DIR.glob("*.py"):
        source = script.read_text()
        if revision := REVISION.search(source):
            revisions.update(QUOTED.findall(revision[1]))
            if down := DOWN_REVISION.search(source):  # None, one revision, or a tuple of them (a merge)
                parents.update(QUOTED.findall(down[1]))
    return revisions - parents
