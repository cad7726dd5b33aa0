"""Run Alembic from code, so `apot migrate`, `apot run` and the tests share one way to build the schema."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"


def alembic_config(database_url: str) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


def upgrade_to_head(database_url: str) -> None:
    """Bring the database to the newest schema; a no-op when it is already there."""
    command.upgrade(alembic_config(database_url), "head")


def head_revisions() -> set[str]:
    """The revisions the code's migration scripts end at: where `upgrade_to_head` takes a database."""
    return set(ScriptDirectory.from_config(alembic_config("")).get_heads())
