"""The model zoo: each model a data team brings is registered with `apot models add`, then scored through the API
(one row, a batch), a CSV upload and the form, and every answer compared with the model's own predict_proba /
predict on the same rows in this process. A model apot cannot serve is refused with one line, leaving nothing.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from ml.store import ModelFiles
from tests.accounts import add_account, sign_in
from tests.conftest import RecordingEnqueue
from tests.html import csrf_token, one, parse
from tests.zoo import REFUSED, SERVED, Exhibit, churn_pipeline, served
from webapp.cli import cli
from webapp.config import Settings, get_settings
from webapp.db import make_engine, make_session_factory
from webapp.main import create_app
from webapp.migrate import upgrade_to_head
from webapp.models import RegisteredModel
from webapp.services.models import ModelRegistry, estimator_bytes


@dataclass
class Server:
    """One app on one database for the whole zoo: each model is registered under its own name."""

    client: TestClient
    enqueue: RecordingEnqueue
    registry: ModelRegistry
    database_url: str
    models_dir: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("zoo")
    url, models_dir = f"sqlite:///{root / 'zoo.db'}", root / "models"
    upgrade_to_head(url)
    engine = make_engine(url)
    registry = ModelRegistry(make_session_factory(engine), ModelFiles(models_dir))
    settings = Settings(database_url=url, models_dir=models_dir, broker_url="", secret_key=SecretStr("test"))
    enqueue = RecordingEnqueue()
    with TestClient(create_app(settings, enqueue=enqueue)) as client:
        yield Server(sign_in(client, add_account(registry.sessions, "zoe")), enqueue, registry, url, models_dir)
    engine.dispose()


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """OpenMP's threads only fight over a shared machine's cores for models this small."""
    with threadpool_limits(1):
        yield


def models_add(server: Server, name: str, exhibit: Exhibit, folder: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """`apot models add` as an operator runs it, on the server's database and models directory: its output."""
    monkeypatch.setenv("APOT_DATABASE_URL", server.database_url)
    monkeypatch.setenv("APOT_MODELS_DIR", str(server.models_dir))
    get_settings.cache_clear()
    path = folder / f"{name}.joblib"
    path.write_bytes(exhibit.data)
    args = ["models", "add", str(path), "--name", name]
    if exhibit.sample is not None:
        exhibit.sample.to_csv(folder / "sample.csv", index=False)
        args += ["--sample", str(folder / "sample.csv")]
    if exhibit.metadata is not None:
        (folder / "metadata.json").write_text(json.dumps(exhibit.metadata))
        args += ["--metadata", str(folder / "metadata.json")]
    try:
        result = CliRunner().invoke(cli, args)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == (1 if exhibit.refused else 0), result.output
    return result.output


@pytest.mark.parametrize("name", list(SERVED))
def test_a_model_registers_and_scores_as_it_does_in_process(
    name: str, server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exhibit, client = SERVED[name](), server.client
    output = models_add(server, name, exhibit, tmp_path, monkeypatch)
    assert output.startswith(f"registered {name} 1: ")
    assert ("warning: saved with scikit-learn 1.5.2" in output) is exhibit.warned
    model = client.get(f"/api/v1/models/{name}").json()
    assert (model.get("warning") is not None) is exhibit.warned
    truth = in_process(exhibit, model)

    single = submit(client, name, exhibit.json_rows[0])
    batch = submit(client, name, exhibit.json_rows)
    form = submit_form(client, name, exhibit.json_rows[0], model["features"])
    upload = client.post(
        "/api/v1/jobs/csv",
        files={"file": ("rows.csv", exhibit.rows.to_csv(index=False).encode(), "text/csv")},
        data={"model": name},
    )
    assert upload.status_code == 202, upload.text
    server.enqueue.deliver(server.registry)

    assert same(predictions(client, single), truth[:1])
    assert same(predictions(client, batch), truth)
    assert same(predictions(client, form), truth[:1])
    assert csv_predictions(client, upload.json()["id"], model) == pytest.approx(flat(truth), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_model_apot_cannot_serve_is_refused_in_one_line_leaving_nothing(
    name: str, server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exhibit = REFUSED[name]()
    output = models_add(server, name, exhibit, tmp_path, monkeypatch)
    assert output.count("\n") == 1 and output.startswith(f"apot: {exhibit.refused}"), output
    assert not (server.models_dir / name).exists(), "no file is left behind"
    with server.registry.sessions() as session:
        assert session.scalars(select(RegisteredModel).where(RegisteredModel.name == name)).all() == []


def same(got: Any, expected: Any) -> bool:
    """Equal labels and keys; numbers equal to the last few bits (a BLAS call on 1 row and on 5 may round
    differently, in apot and in the user's own process alike)."""
    if isinstance(expected, dict):
        return isinstance(got, dict) and got.keys() == expected.keys() and all(same(got[k], expected[k]) for k in got)
    if isinstance(expected, list):
        return isinstance(got, list) and len(got) == len(expected) and all(map(same, got, expected))
    if isinstance(expected, float):
        return isinstance(got, float) and got == pytest.approx(expected, rel=1e-12, abs=1e-15)
    return bool(got == expected)


def submit(client: TestClient, name: str, inputs: Any) -> str:
    response = client.post("/api/v1/jobs", json={"model": name, "inputs": inputs})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def submit_form(client: TestClient, name: str, row: dict[str, Any], features: list[dict[str, Any]]) -> str:
    """The form as a person fills it in: every value typed as text."""
    typed = {f["name"]: _as_typed(row.get(f["name"])) for f in features}
    data = {**typed, "csrf_token": csrf_token(client, f"/models/{name}")}
    response = client.post(f"/models/{name}/jobs", data=data, follow_redirects=False)
    assert response.status_code == 303, response.text
    return str(response.headers["location"]).rsplit("/", 1)[1]


def _as_typed(value: Any) -> str:
    if value is None:
        return ""
    return str(value).lower() if isinstance(value, bool) else str(value)


def predictions(client: TestClient, job_id: str) -> list[Any]:
    job = client.get(f"/api/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded", job["error"]
    return [without_warnings(p) for p in job["result"]["predictions"]]


def without_warnings(prediction: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in prediction.items() if k != "warnings"}


def in_process(exhibit: Exhibit, model: dict[str, Any]) -> list[dict[str, Any]]:
    """What the model itself says for the rows, in apot's shape."""
    estimator, rows = exhibit.estimator, exhibit.rows
    targets = model.get("targets") or [{"name": "prediction", "classes": model.get("classes")}]
    if targets[0].get("classes") is not None:
        answer = estimator.predict_proba(rows)
        blocks = answer if isinstance(answer, list) else [answer]
        per_target = [[labelled(t["classes"], p) for p in block] for t, block in zip(targets, blocks, strict=True)]
    else:
        values = np.asarray(estimator.predict(rows), dtype=float).reshape(len(rows), len(targets))
        per_target = [[{"value": float(v)} for v in values[:, i]] for i in range(len(targets))]
    if len(targets) == 1:
        return per_target[0]
    names = [t["name"] for t in targets]
    return [{"targets": dict(zip(names, answers, strict=True))} for answers in zip(*per_target, strict=True)]


def labelled(classes: list[Any], probabilities: Any) -> dict[str, Any]:
    names = [str(c) for c in classes]
    return {
        "label": classes[int(np.argmax(probabilities))],
        "probabilities": dict(zip(names, map(float, probabilities), strict=True)),
    }


def flat(truth: list[dict[str, Any]]) -> list[float]:
    """The numbers of each prediction in the order the CSV has its columns."""
    numbers: list[float] = []
    for prediction in truth:
        for answer in prediction["targets"].values() if "targets" in prediction else [prediction]:
            numbers += list(answer["probabilities"].values()) if "probabilities" in answer else [answer["value"]]
    return numbers


def csv_predictions(client: TestClient, job_id: str, model: dict[str, Any]) -> list[float]:
    job = client.get(f"/api/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded", job["error"]
    text = client.get(f"/api/v1/jobs/{job_id}/results.csv").text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert all(row["error"] == "" for row in rows), rows
    targets = model.get("targets") or [{"name": "prediction", "classes": model.get("classes")}]
    numbers: list[float] = []
    for row in rows:
        for target in targets:
            if target.get("classes") is None:
                numbers.append(float(row[target["name"]]))
                continue
            prefix = "probability" if len(targets) == 1 else f"{target['name']}_probability"
            numbers += [float(row[f"{prefix}_{c}"]) for c in target.get("classes")]
    return numbers


def test_unseen_values_are_scored_with_warnings_everywhere_and_impossible_ones_refused(server: Server) -> None:
    model, frame = churn_pipeline()
    server.registry.register(estimator_bytes(model), "joblib", "churn-open", training=frame)
    client, row = server.client, {"plan": "pro", "region": "latam", "tenure": 500, "spend": 40.0, "has_support": True}

    job = submit(client, "churn-open", row)
    upload = client.post(
        "/api/v1/jobs/csv",
        files={"file": ("rows.csv", pd.DataFrame([row]).to_csv(index=False).encode(), "text/csv")},
        data={"model": "churn-open"},
    )
    server.enqueue.deliver(server.registry)

    (prediction,) = client.get(f"/api/v1/jobs/{job}").json()["result"]["predictions"]
    assert [(w["feature"], w["type"]) for w in prediction["warnings"]] == [
        ("region", "unknown_category"),
        ("tenure", "out_of_range"),
    ]
    assert same(
        without_warnings(prediction),
        in_process(served(model, pd.DataFrame([row])), {"classes": model.classes_.tolist()})[0],
    )
    (result,) = csv.DictReader(io.StringIO(client.get(f"/api/v1/jobs/{upload.json()['id']}/results.csv").text))
    assert result["error"] == "" and result["warnings"] == (
        "region: latam is not a category seen in training: the model scores it as it scores any unknown value; "
        "tenure: 500.0 is outside the range seen in training (1 to 59)"
    )
    form = parse(client.get("/models/churn-open").text)
    assert one(form, "input[name=region]")["list"] == "f-region-choices", "a known category, or any other"
    refused = client.post("/api/v1/jobs", json={"model": "churn-open", "inputs": {**row, "tenure": "long"}})
    assert refused.status_code == 422
    assert [e["loc"] for e in refused.json()["detail"]] == [["body", "inputs", "tenure"]]


def test_a_text_feature_is_a_text_area_in_the_form(server: Server) -> None:
    exhibit = SERVED["tfidf-columns"]()
    server.registry.register(exhibit.data, "joblib", "reviews-form", training=exhibit.sample)
    form = parse(server.client.get("/models/reviews-form").text)
    assert one(form, "textarea[name=review]")["maxlength"] == "10000"
