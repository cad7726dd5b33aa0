"""`apot models ...` against a real database, as an operator would use it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LinearRegression
from typer.testing import CliRunner

from tests.zoo import churn_pipeline
from webapp.cli import cli
from webapp.config import get_settings

runner = CliRunner()
Run = Callable[..., tuple[int, str]]


@pytest.fixture
def apot(database_url: str, models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Run]:
    monkeypatch.setenv("APOT_DATABASE_URL", database_url)
    monkeypatch.setenv("APOT_MODELS_DIR", str(models_dir))
    get_settings.cache_clear()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli, list(args))
        return result.exit_code, result.output

    yield run
    get_settings.cache_clear()


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    frame = pd.DataFrame({"rooms": [1.0, 2.0, 3.0, 4.0], "area": [30.0, 50.0, 70.0, 90.0]})
    path = tmp_path / "price.joblib"
    joblib.dump(LinearRegression().fit(frame, frame["area"] * 1000), path)
    frame.to_csv(tmp_path / "sample.csv", index=False)
    return path


def test_register_list_set_default_show_and_remove(apot: Run, model_file: Path) -> None:
    sample = str(model_file.parent / "sample.csv")
    assert apot("models", "add", str(model_file), "--name", "price", "--sample", sample)[0] == 0
    code, output = apot("models", "add", str(model_file), "--name", "price")
    assert code == 0 and "registered price 2: regression, 2 features" in output
    assert "apot models set-default price 2" in output

    assert apot("models", "list")[1].strip() == "price\tregression\t2, 1*"
    assert apot("models", "set-default", "price", "2")[0] == 0
    code, output = apot("models", "show", "price")
    assert code == 0 and output.startswith("price 2 (default): regression")
    assert '{"name": "rooms", "type": "number", "required": true}' in output

    code, output = apot("models", "show", "price", "--version", "1")
    assert '{"name": "rooms", "type": "number", "required": true, "min": 1.0, "max": 4.0}' in output
    assert apot("models", "remove", "price", "--version", "2", "--yes") == (0, "removed price 2\n")
    assert apot("models", "list")[1].strip() == "price\tregression\t1*"


def test_bad_registrations_say_why_and_exit_1(apot: Run, tmp_path: Path) -> None:
    bare = tmp_path / "bare.joblib"
    joblib.dump(LinearRegression().fit(np.array([[1.0], [2.0]]), [1.0, 2.0]), bare)
    code, output = apot("models", "add", str(bare), "--name", "bare")
    assert code == 1 and "give the feature names in a metadata file" in output

    metadata = tmp_path / "bare.json"
    metadata.write_text(json.dumps({"features": ["size"]}))
    assert apot("models", "add", str(bare), "--name", "bare", "--metadata", str(metadata))[0] == 0

    code, output = apot("models", "add", str(bare), "--name", "Bad/Name")
    assert code == 1 and "is not allowed" in output
    code, output = apot("models", "show", "nothing")
    assert code == 1 and "'nothing' is not registered" in output


def test_a_skops_file_registers_once_its_untrusted_types_are_trusted_by_name(apot: Run, tmp_path: Path) -> None:
    model, _ = churn_pipeline()
    path = tmp_path / "churn.skops"
    sio.dump(model, path)
    code, output = apot("models", "add", str(path), "--name", "churn")
    assert code == 1 and "TreePredictor" in output and "--trust TYPE" in output
    needed = sio.get_untrusted_types(file=path)
    code, output = apot("models", "add", str(path), "--name", "churn", *[f"--trust={t}" for t in needed])
    assert code == 0, output
