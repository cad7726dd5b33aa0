"""Model files: written once, checked against their sha256 before loading, skops files only with trusted types."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from ml.schema import InputSchema
from ml.store import (
    FileFormat,
    ModelFiles,
    ModelInfo,
    ModelIntegrityError,
    ModelLoadError,
    UntrustedModelFile,
    read_estimator,
    saved_sklearn_version,
    sha256_of,
)
from tests.zoo import needs_package, saved_with
from webapp.services.models import estimator_bytes

FRAME = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})


def doubled(values: np.ndarray) -> np.ndarray:
    return values * 2


def classifier() -> LogisticRegression:
    return LogisticRegression().fit(FRAME, ["low", "low", "high", "high"])


def stored(files: ModelFiles, name: str, data: bytes, file_format: FileFormat = "joblib") -> ModelInfo:
    path = files.write(name, "1", file_format, data)
    return ModelInfo(
        name,
        "1",
        "classification",
        InputSchema([]),
        None,
        sha256_of(data),
        len(data),
        "1.9",
        file_format,
        True,
        datetime.now(UTC),
        path,
    )


def test_a_written_file_loads_back(tmp_path: Path) -> None:
    files = ModelFiles(tmp_path)
    info = stored(files, "toy", estimator_bytes(classifier()))
    assert info.path == tmp_path / "toy" / "1" / "model.joblib"
    assert list(files.load(info).classes_) == ["high", "low"]


def test_a_version_is_never_overwritten(tmp_path: Path) -> None:
    files = ModelFiles(tmp_path)
    stored(files, "toy", estimator_bytes(classifier()))
    with pytest.raises(FileExistsError):
        files.write("toy", "1", "joblib", b"other")


def test_a_changed_file_is_never_loaded(tmp_path: Path) -> None:
    files = ModelFiles(tmp_path)
    info = stored(files, "toy", estimator_bytes(classifier()))
    info.path.write_bytes(b"not the registered file")
    with pytest.raises(ModelIntegrityError, match="refusing to load"):
        files.load(info)


def test_at_most_cache_size_models_stay_loaded_least_recently_used_out(tmp_path: Path) -> None:
    files = ModelFiles(tmp_path, cache_size=2)
    infos = [stored(files, f"toy-{i}", estimator_bytes(classifier())) for i in range(3)]
    files.load(infos[0])
    files.load(infos[1])
    files.load(infos[0])  # used again: now the most recent
    files.load(infos[2])
    assert files.loaded() == [("toy-0", "1"), ("toy-2", "1")]


def test_each_load_from_disk_is_reported_with_its_seconds_and_a_cached_model_is_not(tmp_path: Path) -> None:
    loads: list[tuple[str, float]] = []
    files = ModelFiles(tmp_path, on_load=lambda info, seconds: loads.append((info.name, seconds)))
    info = stored(files, "toy", estimator_bytes(classifier()))
    files.load(info)
    files.load(info)
    assert [name for name, _ in loads] == ["toy"]
    assert loads[0][1] > 0


def test_a_skops_file_of_trusted_types_loads(tmp_path: Path) -> None:
    files = ModelFiles(tmp_path)
    info = stored(files, "toy", sio.dumps(classifier()), "skops")
    assert info.path.name == "model.skops"
    assert list(files.load(info).classes_) == ["high", "low"]


def test_a_skops_file_that_needs_untrusted_types_is_refused_naming_them() -> None:
    model = make_pipeline(FunctionTransformer(doubled), LogisticRegression()).fit(FRAME, [0, 0, 1, 1])
    with pytest.raises(UntrustedModelFile) as refused:
        read_estimator(sio.dumps(model), "skops")
    assert refused.value.types == ["tests.test_ml_store.doubled"]


@pytest.mark.parametrize("name", ["../escape", "", "a/b", ".hidden", "x" * 65, "Upper", "-dash", "dot.ted"])
def test_names_that_could_leave_the_store_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="is not allowed"):
        ModelFiles(tmp_path).write(name, "1", "joblib", b"x")
    with pytest.raises(ValueError, match="is not allowed"):
        ModelFiles(tmp_path).write("toy", name, "joblib", b"x")


def test_removing_a_version_deletes_its_file_and_forgets_it_in_memory(tmp_path: Path) -> None:
    files = ModelFiles(tmp_path)
    info = stored(files, "toy", estimator_bytes(classifier()))
    files.load(info)
    files.remove("toy", "1")
    assert not info.path.parent.exists() and files.loaded() == []


def test_a_worker_without_the_models_package_says_which_one_to_install(tmp_path: Path) -> None:
    info = stored(ModelFiles(tmp_path), "boosted", needs_package("lightgbm_stand_in"))
    with pytest.raises(ModelLoadError, match="this worker cannot load the model: the file cannot be loaded"):
        ModelFiles(tmp_path).load(info)
    info = stored(ModelFiles(tmp_path), "catboosted", needs_package("catboost"))
    with pytest.raises(ModelLoadError, match=r"needs the package catboost on the server and on every worker"):
        ModelFiles(tmp_path).load(info)


def test_the_scikit_learn_version_a_pickle_was_saved_with_is_read_without_loading_it() -> None:
    data = estimator_bytes(classifier())
    assert saved_sklearn_version(data) == sklearn.__version__
    assert saved_sklearn_version(saved_with(data, "1.5.2")) == "1.5.2"
    assert saved_sklearn_version(b"not a pickle") is None
