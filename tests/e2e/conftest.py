"""End-to-end tests run once per stack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.models import Trained
from tests.stacks import STACKS, Stack, running_stack


@pytest.fixture(scope="module", params=STACKS)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, trained_models: dict[str, Trained]
) -> Iterator[Stack]:
    with running_stack(request.param, tmp_path_factory.mktemp(request.param), trained_models) as stack:
        yield stack
