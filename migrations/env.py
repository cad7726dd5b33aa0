"""Alembic environment: migrates the database named by APOT_DATABASE_URL (or the URL a caller set)."""

from logging.config import fileConfig

from alembic import context

import webapp.services.tracking.tables  # noqa: F401  (its tables are part of the schema too)
from webapp.config import get_settings
from webapp.db import make_engine
from webapp.models import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url") or get_settings().database_url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    engine = make_engine(url, statement_timeout=None)  # a migration may rewrite a large table
    with engine.connect() as connection:
        # render_as_batch: SQLite can only ALTER a table by copying it; Alembic's batch mode does that for us.
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
