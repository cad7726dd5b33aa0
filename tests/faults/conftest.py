"""Fault tests run against real processes and a Redis of their own; each test gets a fresh stack, and a Postgres
cluster of its own when it hangs or restarts one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import FaultStack, fault_stack
from tests.faults.private import PrivatePostgres
from tests.models import Trained


@pytest.fixture
def stack(tmp_path: Path, trained_models: dict[str, Trained]) -> Iterator[FaultStack]:
    with fault_stack(tmp_path, trained_models) as stack:
        yield stack


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    """A cluster the test may hang or restart: doing that to the machine's shared one would fail whatever else runs
    on it."""
    server = PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        server.stop()
