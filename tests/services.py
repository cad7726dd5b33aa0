"""The outside services some tests need, found through APOT_TEST_* variables.

On a laptop without them those tests are skipped and say so; in CI (CI=true) a missing or unreachable
service fails the run instead, so a green CI always means the tests ran against the real thing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, make_url, text

IN_CI = os.environ.get("CI", "").lower() == "true"

POSTGRES = "APOT_TEST_DATABASE_URL"
REDIS = "APOT_TEST_BROKER_URL"
RABBITMQ = "APOT_TEST_AMQP_URL"


SKIPPED_FOR: dict[str, int] = {}
"""How many tests each missing variable skipped; reported once at the end of the run."""


def required_url(variable: str) -> str:
    """The service's URL; skip the test when unset, fail it when unset in CI."""
    url = os.environ.get(variable, "")
    if url:
        return url
    message = f"{variable} is not set, so the tests that need that service did not run"
    if IN_CI:
        pytest.fail(message + " (CI=true: every service must be there)")
    SKIPPED_FOR[variable] = SKIPPED_FOR.get(variable, 0) + 1
    pytest.skip(message)


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A database URL whose connections live in a fresh schema of their own, dropped afterwards."""
    schema = f"apot_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, pool_pre_ping=True)  # tests/faults restart the server meanwhile
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        pytest.fail(f"{POSTGRES}={url} is set but the database cannot be reached: {exc}")
    scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
