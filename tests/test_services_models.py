"""The model registry in the database: register, versions and the default, remove, and what it refuses."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LinearRegression, LogisticRegression
from sqlalchemy import Engine

from ml.schema import SchemaError
from ml.store import ModelFiles, ModelNotFound, UntrustedModelFile
from tests.factories import add_job
from tests.models import Trained
from webapp.db import make_session_factory
from webapp.services.models import ModelRegistry, estimator_bytes

FRAME = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})


@pytest.fixture
def empty(engine: Engine, models_dir: Path) -> ModelRegistry:
    return ModelRegistry(make_session_factory(engine), ModelFiles(models_dir))


def toy(slope: float = 1.0) -> bytes:
    return estimator_bytes(LinearRegression().fit(FRAME, FRAME["x"] * slope))


def test_the_first_version_is_the_default_and_later_ones_count_up(empty: ModelRegistry) -> None:
    first = empty.register(toy(), "joblib", "toy")
    second = empty.register(toy(2), "joblib", "toy")
    assert (first.version, first.is_default, second.version, second.is_default) == ("1", True, "2", False)
    assert empty.get("toy").version == "1"
    assert empty.get("toy", "2").version == "2"
    assert [v.version for v in empty.versions("toy")] == ["2", "1"]


def test_what_is_recorded_of_a_version(empty: ModelRegistry, trained_models: dict[str, Trained]) -> None:
    penguins = trained_models["penguins"]
    info = empty.register(penguins.data, "joblib", "penguins", "2026-11", training=penguins.training)
    assert (info.name, info.version, info.task, info.file_format) == ("penguins", "2026-11", "classification", "joblib")
    assert info.classes == ["Adelie", "Chinstrap", "Gentoo"]
    assert info.size_bytes == len(penguins.data) and len(info.sha256) == 64
    assert info.sklearn_version and info.registered_at is not None
    assert info.path.read_bytes() == penguins.data
    assert [f.name for f in info.schema.features][:2] == ["island", "bill_length_mm"]


def test_set_default_changes_what_unpinned_requests_get(empty: ModelRegistry) -> None:
    empty.register(toy(), "joblib", "toy")
    empty.register(toy(2), "joblib", "toy")
    empty.set_default("toy", "2")
    assert empty.get("toy").version == "2"
    assert [v.is_default for v in empty.versions("toy")] == [True, False]
    with pytest.raises(ModelNotFound):
        empty.set_default("toy", "3")


def test_removing_the_default_makes_the_newest_left_the_default(empty: ModelRegistry) -> None:
    first = empty.register(toy(), "joblib", "toy")
    empty.register(toy(2), "joblib", "toy")
    assert empty.remove("toy", "1") == ["1"]
    assert empty.get("toy").version == "2"
    assert not first.path.exists()
    assert empty.remove("toy") == ["2"]
    with pytest.raises(ModelNotFound):
        empty.get("toy")
    assert empty.all_models() == []


def test_a_taken_version_is_refused(empty: ModelRegistry) -> None:
    empty.register(toy(), "joblib", "toy", "1")
    with pytest.raises(FileExistsError, match="already registered"):
        empty.register(toy(2), "joblib", "toy", "1")


def test_an_estimator_fitted_on_a_bare_array_needs_its_feature_names(empty: ModelRegistry) -> None:
    bare = estimator_bytes(LogisticRegression().fit(np.array([[0.0, 1.0], [1.0, 0.0]] * 5), [0, 1] * 5))
    with pytest.raises(SchemaError, match="give the feature names in a metadata file"):
        empty.register(bare, "joblib", "bare")
    info = empty.register(bare, "joblib", "bare", metadata={"features": ["left", "right"]})
    assert [f.name for f in info.schema.features] == ["left", "right"]


def test_something_that_is_not_an_estimator_is_refused(empty: ModelRegistry) -> None:
    with pytest.raises(SchemaError, match="no predict method"):
        empty.register(estimator_bytes({"not": "a model"}), "joblib", "thing")


def test_a_skops_upload_with_untrusted_types_is_refused_and_nothing_kept(
    empty: ModelRegistry, models_dir: Path
) -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from tests.test_ml_store import doubled

    risky = make_pipeline(FunctionTransformer(doubled), LinearRegression()).fit(FRAME, FRAME["x"])
    with pytest.raises(UntrustedModelFile):
        empty.register(sio.dumps(risky), "skops", "risky")
    assert empty.all_models() == [] and not (models_dir / "risky").exists()


def test_served_counts_ended_jobs_and_their_median_latency(registry: ModelRegistry, engine: Engine) -> None:
    for seconds in (1, 2, 30):
        add_job(engine, took=timedelta(seconds=seconds))
    add_job(engine, status="queued")
    assert registry.served("sizes") == (3, 2.0)
    assert registry.served("penguins") == (0, None)


def test_metadata_can_describe_every_feature(empty: ModelRegistry) -> None:
    features = [{"name": "x", "type": "number", "required": True, "min": 0, "max": 10}]
    info = empty.register(toy(), "joblib", "toy", metadata=json.loads(json.dumps({"features": features})))
    assert info.schema.to_dict() == features


def test_when_its_answer_expires_one_thread_reads_the_registry_again_and_the_others_do_not_wait(
    registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under 64 clients every request thread found the cached answer expired at once, and each read the row on a
    connection of its own. Now one reads; meanwhile the others answer with what was read last."""
    cached = ModelRegistry(registry.sessions, registry.files, cache_seconds=0.05)
    first = cached.get("penguins")
    reads: list[str] = []
    started, release = threading.Event(), threading.Event()
    real = cached._read

    def slow_read(name: str, version: str | None) -> Any:
        reads.append(name)
        started.set()
        release.wait(10)
        return real(name, version)

    monkeypatch.setattr(cached, "_read", slow_read)
    time.sleep(0.1)  # expired
    with ThreadPoolExecutor(16) as threads:
        reading = threads.submit(cached.get, "penguins")
        assert started.wait(10)
        others = [threads.submit(cached.get, "penguins") for _ in range(15)]
        assert [other.result(timeout=5) for other in others] == [first] * 15, "answered at once, from what was kept"
        release.set()
        assert reading.result(timeout=10) == first
    assert reads == ["penguins"]


def test_the_first_lookups_of_a_model_wait_for_one_read(
    registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = ModelRegistry(registry.sessions, registry.files, cache_seconds=60)
    reads: list[str] = []
    real = cached._read

    def slow_read(name: str, version: str | None) -> Any:
        reads.append(name)
        time.sleep(0.2)
        return real(name, version)

    monkeypatch.setattr(cached, "_read", slow_read)
    with ThreadPoolExecutor(8) as threads:
        answers = list(threads.map(lambda _: cached.get("penguins"), range(8)))
    assert reads == ["penguins"]
    assert {answer.version for answer in answers} == {answers[0].version}


def test_lookups_of_names_that_are_not_registered_leave_nothing_behind(registry: ModelRegistry) -> None:
    """Anyone may ask for any model name: a stranger's made-up names must not grow the registry's memory."""
    cached = ModelRegistry(registry.sessions, registry.files, cache_seconds=60)
    for n in range(50):
        with pytest.raises(ModelNotFound):
            cached.get(f"no-such-model-{n}")
    cached.get("penguins")
    assert list(cached._reading) == [("penguins", None)]
