"""Fault tests run against real processes and a Redis of their own; each test gets a fresh stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import FaultStack, fault_stack
from tests.models import Trained


@pytest.fixture
def stack(tmp_path: Path, trained_models: dict[str, Trained]) -> Iterator[FaultStack]:
    with fault_stack(tmp_path, trained_models) as stack:
        yield stack
