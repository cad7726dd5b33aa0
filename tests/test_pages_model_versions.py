"""A model's page (schema, versions, how it served), dashboard uploads of .skops files, and comparing versions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
import skops.io as sio
from fastapi.testclient import TestClient
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from tests.conftest import RecordingEnqueue
from tests.factories import add_job
from tests.html import csrf_token, one, parse
from tests.models import Trained, sizes_v2
from tests.test_ml_store import doubled
from tests.zoo import churn_pipeline
from webapp.models import Job
from webapp.services.models import ModelRegistry, estimator_bytes

HTMX = {"HX-Request": "true"}


def test_the_model_page_shows_schema_versions_file_and_service(
    client: TestClient, registry: ModelRegistry, engine: Engine
) -> None:
    sizes_v2(registry)
    add_job(engine, took=timedelta(milliseconds=40))
    page = parse(client.get("/models/sizes").text)
    about = one(page, "section.about")
    facts = {dt.text: dd.text for dt, dd in zip(about.select("dt"), about.select("dd"), strict=True)}
    assert facts["Served"] == "1 jobs; median time from submission to result 40 ms"
    assert registry.get("sizes").sha256 in facts["File"]
    assert "as installed here" in facts["scikit-learn"]
    rows = [[td.text for td in tr.select("td")] for tr in about.select("table.features tbody tr")]
    assert rows == [["size", "number", "yes", "1.0 to 4.0"], ["colour", "category", "yes", "blue, red"]]
    versions = about.select("table.versions tbody tr")
    assert [tr.select("td")[0].text for tr in versions] == ["2", "1 default"]
    assert one(versions[0], "a")["href"].endswith("/models/sizes?version=2")  # type: ignore[union-attr]


def test_a_pinned_version_page_posts_to_that_version(
    client: TestClient, registry: ModelRegistry, engine: Engine
) -> None:
    sizes_v2(registry)
    page = parse(client.get("/models/sizes", params={"version": "2"}).text)
    assert "not the default" in one(page, ".notice").text
    form = one(page, "form#predict-form")
    assert str(form["action"]).endswith("/models/sizes/jobs?version=2")
    token = csrf_token(client, "/models/sizes?version=2")
    client.post(str(form["action"]), data={"size": "2", "colour": "red", "csrf_token": token})
    with Session(engine) as session:
        assert session.scalars(select(Job.model_version)).all() == ["2"]
    assert client.get("/models/sizes", params={"version": "9"}).status_code == 404


def test_a_sklearn_version_mismatch_is_warned_about(
    client: TestClient, registry: ModelRegistry, engine: Engine
) -> None:
    from webapp.models import RegisteredModel

    with Session(engine) as session, session.begin():
        session.execute(update(RegisteredModel).where(RegisteredModel.name == "sizes").values(sklearn_version="1.0.2"))
    facts = parse(client.get("/models/sizes").text).select("section.about dd")
    assert any("this server runs" in dd.text and "1.0.2" in dd.text for dd in facts)


def skops_upload(client: TestClient, data: bytes, name: str = "cubes", filename: str = "m.skops") -> Any:
    token = csrf_token(client)
    return client.post(
        "/upload-model",
        data={"csrf_token": token, "name": name},
        files={"file": (filename, data, "application/octet-stream")},
        follow_redirects=False,
    )


def test_a_skops_file_becomes_a_model(admin_client: TestClient, registry: ModelRegistry) -> None:
    frame = pd.DataFrame({"side": [1.0, 2.0, 3.0]})
    response = skops_upload(admin_client, sio.dumps(LinearRegression().fit(frame, frame["side"] ** 3)))
    assert response.status_code == 303 and response.headers["location"].endswith("/models/cubes?version=1")
    info = registry.get("cubes")
    assert (info.file_format, info.path.name) == ("skops", "model.skops")


def test_a_skops_file_with_untrusted_types_is_refused_with_their_names(
    admin_client: TestClient, registry: ModelRegistry
) -> None:
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
    risky = make_pipeline(FunctionTransformer(doubled), LinearRegression()).fit(frame, frame["x"])
    response = skops_upload(admin_client, sio.dumps(risky))
    assert response.status_code == 422
    assert "tests.test_ml_store.doubled" in one(parse(response.text), "#model-file-error").text
    assert [m.name for m in registry.all_models()] == ["penguins", "sizes"]


def test_an_admin_sees_the_types_skops_does_not_trust_and_may_trust_them_for_the_file(
    admin_client: TestClient, registry: ModelRegistry, enqueue: RecordingEnqueue
) -> None:
    model, frame = churn_pipeline()
    data = sio.dumps(model)
    refused = parse(skops_upload(admin_client, data, name="churn").text)
    offered = [box["value"] for box in refused.select("fieldset.trust input[name=trust]")]
    assert "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor" in offered
    assert "churn" not in [m.name for m in registry.all_models()]

    token = csrf_token(admin_client)
    fields = {"csrf_token": token, "name": "churn", "trust": offered[:-1]}
    files = {"file": ("m.skops", data, "application/octet-stream")}
    partly = admin_client.post("/upload-model", data=fields, files=files, follow_redirects=False)
    assert partly.status_code == 422, "every type it needs must be trusted"
    fields["trust"] = offered
    added = admin_client.post("/upload-model", data=fields, files=files, follow_redirects=False)
    assert added.status_code == 303, added.text

    row = frame.head(1).to_dict("records")[0]
    job = admin_client.post("/api/v1/jobs", json={"model": "churn", "inputs": {**row, "has_support": False}}).json()
    enqueue.deliver(registry)  # the worker loads the file with the types trusted for it
    scored = admin_client.get(f"/api/v1/jobs/{job['id']}").json()
    assert scored["status"] == "succeeded", scored["error"]
    expected = model.predict_proba(frame.head(1).assign(has_support=False))[0]
    assert list(scored["result"]["predictions"][0]["probabilities"].values()) == pytest.approx(expected)


def test_joblib_files_are_not_accepted_from_the_dashboard(
    admin_client: TestClient, trained_models: dict[str, Trained]
) -> None:
    response = skops_upload(admin_client, trained_models["sizes"].data, filename="m.joblib")
    assert response.status_code == 422
    assert "Only .skops files" in one(parse(response.text), "#model-file-error").text


def test_only_admins_add_models(client: TestClient, registry: ModelRegistry) -> None:
    assert client.get("/upload-model", headers={"accept": "text/html"}).status_code == 403
    assert skops_upload(client, b"x").status_code == 403
    assert [m.name for m in registry.all_models()] == ["penguins", "sizes"]
    home = parse(client.get("/").text)
    assert not home.select("a[href$='/upload-model']"), "members are not offered the upload"


def test_uploads_can_be_switched_off_for_admins_too(admin_client: TestClient, settings: Any) -> None:
    assert parse(admin_client.get("/").text).select("a[href$='/upload-model']")
    settings.allow_model_uploads = False
    assert admin_client.get("/upload-model", headers={"accept": "text/html"}).status_code == 403
    assert skops_upload(admin_client, b"x").status_code == 403


@pytest.mark.parametrize("kind", ["single", "csv"])
def test_comparing_a_job_with_another_version(
    client: TestClient, registry: ModelRegistry, enqueue: RecordingEnqueue, kind: str
) -> None:
    sizes_v2(registry)
    if kind == "single":
        created = client.post("/api/v1/jobs", json={"model": "sizes", "inputs": {"size": 2, "colour": "red"}}).json()
    else:
        content = b"size,colour\n1,red\n2,blue\n3,green\n4,red\n"
        created = client.post(
            "/api/v1/jobs/csv", files={"file": ("s.csv", content, "text/csv")}, data={"model": "sizes"}
        ).json()
    enqueue.deliver(registry)
    job_page = parse(client.get(f"/jobs/{created['id']}").text)
    assert [o["value"] for o in job_page.select("#compare-version option")] == ["2"]

    token = csrf_token(client, f"/jobs/{created['id']}")
    response = client.post(
        f"/jobs/{created['id']}/compare", data={"csrf_token": token, "version": "2"}, follow_redirects=False
    )
    assert response.status_code == 303
    waiting = parse(client.get(response.headers["location"]).text)
    assert one(waiting, "#comparison")["hx-trigger"] == "every 1s"

    enqueue.deliver(registry)
    page = parse(client.get(response.headers["location"]).text)
    assert not one(page, "#comparison").has_attr("hx-trigger")
    summary = one(page, "#comparison .prediction").text
    shifts = [[td.text for td in tr.select("td")] for tr in page.select("table.shifts tbody tr")]
    if kind == "single":
        assert "Over 1 row the predicted value moved by 20 on average" in summary
        assert shifts == [["1", "20", "40", "+20"]]
    else:
        assert "Over 3 rows" in summary  # the green row is bad in both versions
        assert [s[0] for s in shifts] == ["4", "2", "1"]


def test_comparing_classifier_versions_counts_label_changes(
    client: TestClient, registry: ModelRegistry, enqueue: RecordingEnqueue, trained_models: dict[str, Trained]
) -> None:
    from sklearn.dummy import DummyClassifier

    training = trained_models["penguins"].training
    always_adelie = DummyClassifier(strategy="constant", constant="Adelie").fit(training, ["Adelie"] * len(training))
    registry.register(
        estimator_bytes(always_adelie),
        "joblib",
        "penguins",
        metadata={"features": registry.get("penguins").schema.to_dict()},
    )
    rows = [
        {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230},
        {"island": "Torgersen", "bill_length_mm": 36.7, "flipper_length_mm": 187},
    ]
    created = client.post("/api/v1/jobs", json={"model": "penguins", "inputs": rows}).json()
    enqueue.deliver(registry)
    token = csrf_token(client, f"/jobs/{created['id']}")
    location = client.post(
        f"/jobs/{created['id']}/compare", data={"csrf_token": token, "version": "2"}, follow_redirects=False
    ).headers["location"]
    enqueue.deliver(registry)
    page = parse(client.get(location).text)
    assert "1 of 2 predictions changed (50.0 %)" in one(page, "#comparison .prediction").text
    changes = [[td.text for td in tr.select("td")] for tr in page.select("table.label-changes tbody tr")]
    assert changes == [["Gentoo", "Adelie", "1"]]


def test_a_version_that_takes_fewer_features_is_given_those_it_knows(
    client: TestClient, registry: ModelRegistry, enqueue: RecordingEnqueue, trained_models: dict[str, Trained]
) -> None:
    from sklearn.linear_model import LogisticRegression

    training = trained_models["penguins"].training.dropna()
    species = ["Gentoo" if flipper > 205 else "Adelie" for flipper in training["flipper_length_mm"]]
    two_features = training[["bill_length_mm", "flipper_length_mm"]].astype(float)
    smaller = LogisticRegression().fit(two_features, species)
    registry.register(estimator_bytes(smaller), "joblib", "penguins", training=two_features)
    row = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}
    created = client.post("/api/v1/jobs", json={"model": "penguins", "inputs": row}).json()
    enqueue.deliver(registry)
    token = csrf_token(client, f"/jobs/{created['id']}")
    response = client.post(
        f"/jobs/{created['id']}/compare", data={"csrf_token": token, "version": "2"}, follow_redirects=False
    )
    assert response.status_code == 303
    enqueue.deliver(registry)
    page = parse(client.get(response.headers["location"]).text)
    assert "0 of 1 predictions changed" in one(page, "#comparison .prediction").text
