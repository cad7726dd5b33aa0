"""The schema is made only by migrations, and the migrations match the ORM models on every backend."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

import webapp.services.tracking.tables  # noqa: F401  (its tables are part of the schema too)
from webapp.migrate import alembic_config, database_revisions, head_revisions, upgrade_if_behind
from webapp.models import Base


def test_migrations_and_models_agree(engine: Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_history_indexes_exist(engine: Engine) -> None:
    indexes = {index["name"] for index in inspect(engine).get_indexes("jobs")}
    assert indexes >= {"ix_jobs_created_at_id", "ix_jobs_status_created_at_id", "ix_jobs_model_name_created_at_id"}


def test_downgrade_to_nothing_and_back(database_url: str, engine: Engine) -> None:
    config = alembic_config(database_url)
    command.downgrade(config, "base")
    assert "jobs" not in inspect(engine).get_table_names()
    command.upgrade(config, "head")
    assert "jobs" in inspect(engine).get_table_names()


def test_the_head_read_from_the_scripts_text_is_alembics() -> None:
    assert head_revisions() == set(ScriptDirectory.from_config(alembic_config("")).get_heads())


def test_upgrade_if_behind_migrates_a_database_below_the_head(database_url: str) -> None:
    command.downgrade(alembic_config(database_url), "-1")
    assert database_revisions(database_url) != head_revisions()
    upgrade_if_behind(database_url)
    assert database_revisions(database_url) == head_revisions()
