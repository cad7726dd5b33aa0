"""schemathesis against a live apot (real web server and worker, on Postgres + Redis, where text with NUL in it fails
a query) with a valid key, every check on and every phase (examples, coverage, fuzzing, stateful): whatever it sends
within and around /openapi.json, no answer is a 5xx, every answer matches the schema the app publishes, and what the
document calls valid is accepted (bar the refusals by meaning listed in schemathesis.toml)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.models import Trained
from tests.stacks import Stack, running_stack

CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, trained_models: dict[str, Trained]) -> Iterator[Stack]:
    with running_stack("postgres-redis", tmp_path_factory.mktemp("fuzz"), trained_models) as stack:
        yield stack


def test_no_5xx_and_every_answer_matches_the_schema(stack: Stack, tmp_path: Path) -> None:
    report = tmp_path / "schemathesis.txt"
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(CONFIG),
        "run",
        f"{stack.base_url}/openapi.json",
        "--header",
        f"Authorization: {stack.auth['Authorization']}",
        "--checks",
        "all",
        "--max-examples",
        "25",
        "--seed",
        "7",
        "--request-timeout",
        "40",
    ]
    with report.open("w") as out:
        finished = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, timeout=600, check=False)
    text = report.read_text()
    assert finished.returncode == 0, text[-6000:]
    assert "passed" in text.lower()
