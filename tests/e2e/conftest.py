"""End-to-end tests run once per stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stacks import STACKS, Stack, running_stack


@pytest.fixture(scope="module", params=STACKS)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, models_dir: Path
) -> Iterator[Stack]:
    with running_stack(request.param, tmp_path_factory.mktemp(request.param), models_dir) as stack:
        yield stack
