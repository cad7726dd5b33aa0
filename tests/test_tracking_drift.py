"""Drift: workers count what they score per feature, and a day's counts are compared with the reference the
version was registered with. Rows drawn from the training data are not flagged; a shifted feature is, alone."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select

from ml.demo import training_data
from ml.drift import PSI_DRIFT, Summary, build_reference, compare, merge, summarise
from ml.schema import InputSchema
from tests.conftest import RecordingEnqueue, worker_context
from tests.html import parse
from tests.metrics import parse as parse_metrics
from tests.metrics import value
from tests.models import Trained
from tests.test_services_scoring import TOO_TRUSTING
from tests.zoo import native_categorical
from webapp.config import Settings
from webapp.models import Job, utcnow
from webapp.services.models import ModelRegistry, estimator_bytes
from webapp.services.scoring import score_jobs
from webapp.services.tracking import summaries
from webapp.services.tracking.summaries import compact, day_summary
from webapp.services.tracking.tables import FeatureSummary


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Chunks of 150 rows: a CSV of a few hundred rows is a few tasks."""
    return settings.model_copy(update={"csv_chunk_rows": 150})


def penguins_csv(rows: int, seed: int, shift: str | None = None) -> bytes:
    """Birds drawn from the training data; with `shift`, that feature's values all from the top of its range."""
    features, _ = training_data()
    sample = features.sample(n=rows, replace=True, random_state=seed).reset_index(drop=True)
    if shift is not None:
        column = features[shift].dropna()
        top = np.random.default_rng(seed).uniform(column.quantile(0.8), column.max(), size=rows)
        sample[shift] = top.round(1)
    return sample.to_csv(index=False).encode()


def score_csv(client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry, content: bytes) -> None:
    response = client.post(
        "/api/v1/jobs/csv", files={"file": ("birds.csv", content, "text/csv")}, data={"model": "penguins"}
    )
    assert response.status_code == 202, response.text
    enqueue.deliver(registry)
    assert client.get(response.json()["url"]).json()["status"] == "succeeded"


def flagged_on_page(client: TestClient) -> list[str]:
    soup = parse(client.get("/models/penguins").text)
    assert soup.select("#drift table.drift tbody tr"), "the drift table is shown"
    return [str(row["data-feature"]) for row in soup.select("#drift tr.flagged")]


def test_rows_like_the_training_data_are_not_flagged(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry
) -> None:
    score_csv(client, enqueue, registry, penguins_csv(400, seed=1))

    assert flagged_on_page(client) == []
    samples = parse_metrics(client.get("/metrics").text)
    assert value(samples, "apot_feature_psi", model="penguins", version="1", feature="island") < 0.1
    assert value(samples, "apot_feature_drifting", model="penguins", version="1", feature="bill_length_mm") == 0


def test_one_shifted_feature_is_flagged_and_no_other(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry
) -> None:
    score_csv(client, enqueue, registry, penguins_csv(400, seed=2, shift="bill_length_mm"))

    assert flagged_on_page(client) == ["bill_length_mm"]
    samples = parse_metrics(client.get("/metrics").text)
    drifting = {dict(labels)["feature"]: v for (name, labels), v in samples.items() if name == "apot_feature_drifting"}
    assert drifting == {
        "island": 0,
        "bill_length_mm": 1,
        "flipper_length_mm": 0,
        "bill_depth_mm": 0,
        "body_mass_g": 0,
        "sex": 0,
    }
    assert value(samples, "apot_feature_psi", model="penguins", version="1", feature="bill_length_mm") >= PSI_DRIFT


def test_summaries_hold_counts_that_add_up_and_compact_into_one_row(registry: ModelRegistry) -> None:
    context = worker_context(registry)
    features, _ = training_data()
    rows = features.dropna().head(30).to_dict("records")

    # Three jobs scored one after the other, three summaries appended (queued together, one claim would take all
    # three: a worker claims the whole backlog of a model version).
    for start in range(0, 30, 10):
        with registry.sessions.begin() as session:
            job = Job(
                kind="batch",
                model_name="penguins",
                model_version="1",
                task_id="t",
                inputs=rows[start : start + 10],
                rows_total=10,
            )
            session.add(job)
        score_jobs(context, [str(job.id)])
    today = utcnow().date()
    before = day_summary(registry.sessions, "penguins", "1", today)
    assert before["rows"] == 30
    assert sum(before["features"]["bill_length_mm"]["bins"]) == 30
    assert sum(before["features"]["island"]["bins"].values()) == 30

    assert compact(registry.sessions) == 3
    with registry.sessions() as session:
        assert session.scalar(select(func.count()).select_from(FeatureSummary)) == 1
    assert day_summary(registry.sessions, "penguins", "1", today) == before


def test_tracking_off_writes_no_summaries(registry: ModelRegistry) -> None:

    context = replace(worker_context(registry), tracking=False)
    features, _ = training_data()
    with registry.sessions.begin() as session:
        job = Job(
            kind="batch",
            model_name="penguins",
            model_version="1",
            task_id="t",
            inputs=features.dropna().head(5).to_dict("records"),
            rows_total=5,
        )
        session.add(job)
    score_jobs(context, [str(job.id)])
    with registry.sessions() as session:
        assert session.scalar(select(func.count()).select_from(FeatureSummary)) == 0
        assert session.get_one(Job, job.id).status == "succeeded"


def test_a_reference_without_a_sample_comes_from_the_training_ranges_and_categories() -> None:
    schema = InputSchema.from_dict(
        [
            {"name": "size", "type": "number", "min": 0.0, "max": 10.0},
            {"name": "colour", "type": "category", "choices": ["blue", "red"]},
            {"name": "free", "type": "number"},
        ]
    )
    reference = build_reference(schema, None)
    assert set(reference["features"]) == {"size", "colour"}, "a number with no range cannot be tracked"
    assert reference["features"]["colour"]["expected"] == {"blue": 0.5, "red": 0.5}
    frame = pd.DataFrame({"size": [0.5, 9.5, 12.0, None], "colour": ["blue", "green", "red", "red"]})
    drift = {d.name: d for d in compare(reference, merge([summarise(reference, frame)]))}
    assert (drift["size"].outside, drift["size"].missing, drift["colour"].outside) == (1, 1, 1)
    assert drift["colour"].labels == ["blue", "red", "green"], "an unseen category is shown beside the known"


def test_values_scored_with_a_warning_are_counted_outside_the_reference(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry
) -> None:
    """Values beyond training are scored (with a warning) since models take them: drift counts the same ones."""
    bird = {"island": "Biscoe", "bill_length_mm": 500.0, "flipper_length_mm": 230, "sex": "male"}
    response = client.post("/api/v1/jobs", json={"model": "penguins", "inputs": [bird, {**bird, "bill_length_mm": 45}]})
    assert response.status_code == 202, response.text
    enqueue.deliver(registry)
    predictions = client.get(response.json()["url"]).json()["result"]["predictions"]
    assert [[w["feature"] for w in p.get("warnings", [])] for p in predictions] == [["bill_length_mm"], []]

    counted = day_summary(registry.sessions, "penguins", "1", utcnow().date())["features"]
    assert counted["bill_length_mm"]["outside"] == 1
    assert counted["flipper_length_mm"]["outside"] == 0


def test_an_unseen_native_category_is_counted_as_unseen_not_missing(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry
) -> None:
    """A model fitted on pandas Categoricals is given one again, where a category it never saw is a missing value;
    drift still counts it as the category sent, outside the reference, in JSON jobs and CSV files alike."""
    model, frame = native_categorical()
    registry.register(estimator_bytes(model), "joblib", "native", training=frame)
    row = {"plan": "basic", "region": "eu", "tenure": 12, "spend": 40.0}
    rows = [row, {**row, "plan": "enterprise"}, {**row, "plan": None}]
    response = client.post("/api/v1/jobs", json={"model": "native", "inputs": rows})
    assert response.status_code == 202, response.text
    upload = pd.DataFrame(rows).to_csv(index=False).encode()
    csv = client.post("/api/v1/jobs/csv", files={"file": ("c.csv", upload, "text/csv")}, data={"model": "native"})
    assert csv.status_code == 202, csv.text
    enqueue.deliver(registry)
    for url in (response.json()["url"], csv.json()["url"]):
        assert client.get(url).json()["status"] == "succeeded"

    plan = day_summary(registry.sessions, "native", "1", utcnow().date())["features"]["plan"]
    assert plan == {"bins": {"basic": 2, "enterprise": 2}, "missing": 2, "outside": 2}


def test_jobs_scored_one_by_one_after_their_batch_failed_are_counted(
    client: TestClient,
    enqueue: RecordingEnqueue,
    registry: ModelRegistry,
    trained_models: dict[str, Trained],
) -> None:
    """A bad row fails the model call of its group; the jobs then scored alone count their rows as any others."""
    registry.register(trained_models["sizes"].data, "joblib", "trusting", metadata=TOO_TRUSTING)
    good, bad = {"size": 2, "colour": "blue"}, {"size": 2, "colour": "purple"}  # purple: not known to the encoder
    made = [client.post("/api/v1/jobs", json={"model": "trusting", "inputs": i}) for i in (good, bad, [good, good])]
    assert [m.status_code for m in made] == [202] * 3
    enqueue.deliver(registry)
    statuses = [client.get(m.json()["url"]).json()["status"] for m in made]
    assert statuses == ["succeeded", "failed", "succeeded"]

    counted = day_summary(registry.sessions, "trusting", "1", utcnow().date())
    assert counted["rows"] == 3
    assert counted["features"]["colour"]["bins"] == {"blue": 3}


def test_a_merge_another_reconciler_overtook_changes_nothing(
    registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows are merged outside the write; if another reconciler took one of them meanwhile, this merge is dropped."""
    parts = [{"rows": n, "features": {"x": {"bins": [n, 0], "missing": 0, "outside": 0}}} for n in (1, 2)]
    rows = [
        FeatureSummary(model_name="m", model_version="1", day=utcnow().date(), rows=p["rows"], counts=p) for p in parts
    ]
    with registry.sessions.begin() as session:
        session.add_all(rows)
    first, second = (row.id for row in rows)

    def overtaken(counts: Iterable[Summary]) -> Summary:
        total = merge(counts)
        with registry.sessions.begin() as session:  # the other reconciler's claim, as this one merges
            session.execute(delete(FeatureSummary).where(FeatureSummary.id == first))
        return total

    monkeypatch.setattr(summaries, "merge", overtaken)
    assert compact(registry.sessions) == 0
    with registry.sessions() as session:
        assert session.scalars(select(FeatureSummary.id)).all() == [second]


def test_categories_are_counted_by_their_text_and_missing_values_left_out() -> None:
    reference = {"features": {"island": {"kind": "category", "expected": {"Biscoe": 0.5, "Dream": 0.5}}}}
    texts = pd.DataFrame({"island": pd.Series(["Biscoe", None, "Dream", "Biscoe", float("nan"), "Mars"], dtype=object)})
    counted = summarise(reference, texts)["features"]["island"]
    assert counted == {"bins": {"Biscoe": 2, "Dream": 1, "Mars": 1}, "missing": 2, "outside": 1}
    # Values equal to Python (1 == 1.0 == True) but written differently are different categories to a reader.
    mixed = pd.DataFrame({"island": pd.Series([1, 1.0, True, "1", None], dtype=object)})
    assert summarise(reference, mixed)["features"]["island"]["bins"] == {"1": 2, "1.0": 1, "True": 1}
