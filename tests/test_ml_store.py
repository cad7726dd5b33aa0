"""The model store on disk: saving, finding versions, and refusing a file that changed after registration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from ml.predict import predict_frame
from ml.schema import to_frame
from ml.store import ARTIFACT, METADATA, ModelIntegrityError, ModelNotFound, ModelStore


def fitted_classifier() -> LogisticRegression:
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    return LogisticRegression().fit(frame, ["low", "low", "high", "high"])


def test_saved_model_is_found_and_predicts(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    info = store.save(fitted_classifier(), "toy", "1")

    found = store.get("toy")
    (prediction,) = predict_frame(store.load(found), to_frame([{"x": 2.5}], found.schema.features))

    assert found == info
    assert found.task == "classification" and found.classes == ["high", "low"]
    assert prediction["label"] == "high"
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0)


def test_the_newest_version_is_the_default_in_natural_order(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    for version in ("2", "10", "9"):
        store.save(fitted_classifier(), "toy", version)
    assert store.get("toy").version == "10"
    assert store.get("toy", "9").version == "9"
    assert [m.version for m in store.all_models()] == ["10"]


def test_unknown_names_and_versions_are_not_found(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    store.save(fitted_classifier(), "toy", "1")
    with pytest.raises(ModelNotFound, match="'nope'"):
        store.get("nope")
    with pytest.raises(ModelNotFound, match="version '7'"):
        store.get("toy", "7")


def test_a_model_added_by_another_process_is_found_without_waiting(tmp_path: Path) -> None:
    reader = ModelStore(tmp_path, rescan_after=3600)
    with pytest.raises(ModelNotFound):
        reader.get("toy")
    ModelStore(tmp_path).save(fitted_classifier(), "toy", "1")
    assert reader.get("toy").name == "toy"


def test_a_changed_model_file_is_never_loaded(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    info = store.save(fitted_classifier(), "toy", "1")
    (info.folder / ARTIFACT).write_bytes(b"not the registered file")
    with pytest.raises(ModelIntegrityError, match="refusing to load"):
        ModelStore(tmp_path).load(info)


def test_regressors_predict_values(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
    info = store.save(LinearRegression().fit(frame, np.array([0.0, 2.0, 4.0])), "line", "1")
    (prediction,) = predict_frame(store.load(info), to_frame([{"x": 3.0}], info.schema.features))
    assert info.task == "regression" and info.classes is None
    assert prediction == {"value": pytest.approx(6.0)}


@pytest.mark.parametrize("name", ["../escape", "", "a/b", ".hidden", "x" * 65, "Upper", "-dash", "dot.ted"])
def test_names_that_could_leave_the_store_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="names and versions"):
        ModelStore(tmp_path).save(fitted_classifier(), name, "1")


def test_metadata_is_plain_json_with_ranges_from_the_training_data(tmp_path: Path) -> None:
    training = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    info = ModelStore(tmp_path).save(fitted_classifier(), "toy", "1", training=training)
    metadata = json.loads((info.folder / METADATA).read_text())
    assert metadata["features"] == [{"name": "x", "type": "number", "required": True, "min": 0.0, "max": 3.0}]


def test_at_most_cache_size_models_stay_loaded_least_recently_used_out(tmp_path: Path) -> None:
    writer = ModelStore(tmp_path)
    infos = [writer.save(fitted_classifier(), f"toy-{i}", "1") for i in range(3)]
    store = ModelStore(tmp_path, cache_size=2)
    store.load(infos[0])
    store.load(infos[1])
    store.load(infos[0])  # used again: now the most recent
    store.load(infos[2])
    assert store.loaded() == [("toy-0", "1"), ("toy-2", "1")]
