"""What moves a prediction: one explain job per job, scored by the worker in one call, whose curves are the
predictions the model gives in this process on the same grid, and for a linear model exact contributions."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.linear_model import Ridge
from sklearn.multioutput import MultiOutputRegressor
from sqlalchemy import func, select

from ml.predict import model_input, predict_frame
from ml.schema import to_frame
from tests.conftest import RecordingEnqueue
from tests.html import parse
from tests.zoo import diabetes_two_targets
from webapp.models import Job, utcnow
from webapp.services.models import ModelRegistry, estimator_bytes
from webapp.services.tracking.summaries import day_summary

GENTOO = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}


def scored(client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry, inputs: object) -> str:
    response = client.post("/api/v1/jobs", json={"model": "penguins", "inputs": inputs})
    assert response.status_code == 202, response.text
    enqueue.deliver(registry)
    return str(response.json()["id"])


def test_the_curves_are_the_models_predictions_on_the_same_grid(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry
) -> None:
    job_id = scored(client, enqueue, registry, GENTOO)
    first = client.get(f"/api/v1/jobs/{job_id}/explanation")
    assert first.status_code == 202
    assert first.json()["status"] == "queued"
    enqueue.deliver(registry)  # the worker scores the explain job

    answer = client.get(f"/api/v1/jobs/{job_id}/explanation")
    assert answer.status_code == 200, answer.text
    explanation = answer.json()
    assert explanation["explain_job_id"] == first.json()["explain_job_id"], "computed once per job"
    info = registry.get("penguins")
    estimator = registry.files.load(info)
    with registry.sessions() as session:
        row = session.get_one(Job, uuid.UUID(job_id)).inputs[0]
    label = explanation["label"]
    assert label == "Gentoo"
    features = {f.name: f for f in info.schema.features}
    assert [c["feature"] for c in explanation["curves"]] == list(features)
    for curve in explanation["curves"]:
        feature = features[curve["feature"]]
        rows = [{**row, feature.name: value} for value in curve["values"]]
        expected = [
            p["probabilities"][label]
            for p in predict_frame(estimator, to_frame(rows, info.schema.features), info.outputs)
        ]
        assert curve["predictions"] == pytest.approx(expected, abs=1e-12)
        assert curve["current"] == row.get(feature.name)
        if feature.min is not None:
            assert (curve["values"][0], curve["values"][-1]) == (feature.min, feature.max)
        elif feature.choices:
            assert curve["values"] == feature.choices

    # A logistic regression: the contributions and intercept add up to its score for the predicted class.
    parts = explanation["contributions"]
    score = estimator.decision_function(model_input(estimator, to_frame([row], info.schema.features)))[0]
    expected_score = score[list(estimator.classes_).index(label)]
    assert parts["intercept"] + sum(parts["contributions"].values()) == pytest.approx(expected_score)
    assert parts["score"] == pytest.approx(expected_score)
    assert set(parts["contributions"]) == set(features)

    # The made-up rows of the explanation are not traffic: drift counted the job's one row only.
    assert day_summary(registry.sessions, "penguins", "1", utcnow().date())["rows"] == 1
    with registry.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Job).where(Job.kind == "explain")) == 1


def test_the_job_page_draws_one_curve_per_feature(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry
) -> None:
    job_id = scored(client, enqueue, registry, GENTOO)
    page = parse(client.get(f"/jobs/{job_id}").text)
    assert str(page.select_one("#explanation")["hx-get"]).endswith(f"/jobs/{job_id}/explanation")  # type: ignore[index]

    waiting = parse(client.get(f"/jobs/{job_id}/explanation", headers={"HX-Request": "true"}).text)
    assert waiting.select_one("#explanation")["hx-trigger"] == "load delay:1s"  # type: ignore[index]
    enqueue.deliver(registry)
    ready = parse(client.get(f"/jobs/{job_id}/explanation", headers={"HX-Request": "true"}).text)

    panel = ready.select_one("#explanation")
    assert panel is not None and not panel.has_attr("hx-trigger"), "polling stops once it is ready"
    curves = panel.select("figure.curve")
    assert len(curves) == len(registry.get("penguins").schema.features)
    # The row is marked on the curve of each feature it gives (not bill depth nor body mass: they were left out).
    assert [len(c.select("circle.curve-current")) for c in curves] == [1, 1, 1, 0, 0, 1]
    assert np.isclose(
        sum(float(td.get_text()) for td in panel.select("table.contributions td")),
        client.get(f"/api/v1/jobs/{job_id}/explanation").json()["contributions"]["score"]
        - client.get(f"/api/v1/jobs/{job_id}/explanation").json()["contributions"]["intercept"],
        atol=0.01,
    )


def test_only_a_single_row_job_that_succeeded_is_explained(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry
) -> None:
    batch = scored(client, enqueue, registry, [GENTOO, GENTOO])
    answer = client.get(f"/api/v1/jobs/{batch}/explanation")
    assert answer.status_code == 409
    assert "single-row" in answer.json()["detail"]


def test_a_multi_output_models_job_is_tracked_but_neither_explained_nor_given_outcomes(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry
) -> None:
    features, targets = diabetes_two_targets()
    model = MultiOutputRegressor(Ridge()).fit(features, targets)
    metadata = {"targets": list(targets.columns)}
    registry.register(estimator_bytes(model), "joblib", "two", training=features, metadata=metadata)
    response = client.post("/api/v1/jobs", json={"model": "two", "inputs": features.head(1).to_dict("records")[0]})
    assert response.status_code == 202, response.text
    enqueue.deliver(registry)
    job_id = response.json()["id"]
    assert client.get(f"/api/v1/jobs/{job_id}").json()["status"] == "succeeded"
    assert day_summary(registry.sessions, "two", "1", utcnow().date())["rows"] == 1, "its rows count for drift"

    refused = client.get(f"/api/v1/jobs/{job_id}/explanation")
    assert refused.status_code == 409 and "multi-output" in refused.text
    outcome = client.post(f"/api/v1/jobs/{job_id}/outcomes", json={"outcomes": [{"row": 0, "outcome": 1.0}]})
    assert outcome.status_code == 422 and "multi-output" in outcome.text


def test_the_job_list_names_an_explain_job_by_its_kind(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry
) -> None:
    # The list once answered 500 to every call after the first explanation: its schema knew only the older kinds.
    job_id = scored(client, enqueue, registry, GENTOO)
    explain_job_id = client.get(f"/api/v1/jobs/{job_id}/explanation").json()["explain_job_id"]
    enqueue.deliver(registry)

    listed = client.get("/api/v1/jobs")
    assert listed.status_code == 200, listed.text
    kinds = {item["id"]: item["kind"] for item in listed.json()["items"]}
    assert kinds == {job_id: "single", explain_job_id: "explain"}
