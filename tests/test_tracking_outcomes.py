"""Outcomes reported after the fact: stored once per row, scoped to the job's owner, and the figures the model page
and /metrics show equal scikit-learn's metrics on the same rows."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import accuracy_score, f1_score, log_loss, mean_absolute_error, mean_squared_error

from ml.demo import training_data
from tests.accounts import Account
from tests.conftest import RecordingEnqueue
from tests.html import parse
from tests.metrics import parse as parse_metrics
from tests.metrics import value
from webapp.services.models import ModelRegistry

CLASSES = ["Adelie", "Chinstrap", "Gentoo"]


def scored_jobs(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry, model: str, rows: list[Any]
) -> list[dict[str, Any]]:
    """Submit `rows` in jobs of at most 5 (the test settings' limit), score them, and read them back."""
    ids = []
    for start in range(0, len(rows), 5):
        response = client.post("/api/v1/jobs", json={"model": model, "inputs": rows[start : start + 5]})
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    enqueue.deliver(registry)
    return [client.get(f"/api/v1/jobs/{job_id}").json() for job_id in ids]


def penguins(count: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Birds from the training data with every feature present, and their true species."""
    features, species = training_data()
    complete = features.dropna().sample(n=count, random_state=3)
    rows = [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in complete.to_dict("records")]
    return rows, species.loc[complete.index].tolist()


def figures_on_page(client: TestClient, model: str) -> dict[str, list[str]]:
    soup = parse(client.get(f"/models/{model}").text)
    return {
        str(row["data-version"]): [cell.get_text(" ", strip=True) for cell in row.find_all("td")]
        for row in soup.select("#outcomes table.outcome-figures tbody tr")
    }


def test_classifier_figures_equal_scikit_learns_on_the_same_rows(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry
) -> None:
    rows, truth = penguins(20)
    # Some wrong outcomes on purpose, so that accuracy, log loss and F1 are not trivially perfect.
    truth = [CLASSES[(CLASSES.index(t) + 1) % 3] if i % 4 == 0 else t for i, t in enumerate(truth)]
    jobs = scored_jobs(client, enqueue, registry, "penguins", rows)
    predictions = [p for job in jobs for p in job["result"]["predictions"]]
    for job, start in zip(jobs, range(0, 20, 5), strict=True):
        body = {"outcomes": [{"row": i, "outcome": truth[start + i]} for i in range(len(job["result"]["predictions"]))]}
        response = client.post(f"/api/v1/jobs/{job['id']}/outcomes", json=body)
        assert response.status_code == 200, response.text
        assert response.json() == {"recorded": 5}
    # The same outcomes again: stored once.
    again = client.post(f"/api/v1/jobs/{jobs[0]['id']}/outcomes", json={"outcomes": [{"row": 0, "outcome": truth[0]}]})
    assert again.json() == {"recorded": 1}

    labels = [p["label"] for p in predictions]
    probabilities = [[p["probabilities"][c] for c in CLASSES] for p in predictions]
    expected_accuracy = accuracy_score(truth, labels)
    expected_loss = log_loss(truth, probabilities, labels=CLASSES)
    expected_f1 = f1_score(truth, labels, average="macro")

    shown = figures_on_page(client, "penguins")
    assert shown["1"] == [
        "20 of 20 predictions",
        f"{expected_accuracy:.0%}",
        f"{expected_loss:.3g}",
        f"{expected_f1:.3g}",
    ]
    samples = parse_metrics(client.get("/metrics").text)
    labels_of = {"model": "penguins", "version": "1"}
    assert value(samples, "apot_outcomes_rows", **labels_of) == 20
    assert value(samples, "apot_model_accuracy", **labels_of) == pytest.approx(expected_accuracy)
    assert value(samples, "apot_model_log_loss", **labels_of) == pytest.approx(expected_loss, rel=1e-6)
    assert value(samples, "apot_model_f1", **labels_of) == pytest.approx(expected_f1)


def test_regressor_figures_from_a_csv_of_outcomes_equal_scikit_learns(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry
) -> None:
    rows = [{"size": float(s), "colour": c} for s, c in zip([1, 2, 3, 4, 2, 3, 1], "rbrbrbr", strict=True)]
    rows = [{**row, "colour": "red" if row["colour"] == "r" else "blue"} for row in rows]
    truth = [11.0, 19.0, 33.0, 38.5, 20.0, 29.0, 12.5]
    jobs = scored_jobs(client, enqueue, registry, "sizes", rows)
    predicted = [p["value"] for job in jobs for p in job["result"]["predictions"]]
    lines = ["job_id,row,outcome"]
    number = 0
    for job in jobs:
        for row in range(len(job["result"]["predictions"])):
            lines.append(f"{job['id']},{row},{truth[number]}")
            number += 1
    csv = "\n".join(lines) + "\n"

    for _ in range(2):  # sent twice: the second replaces the first, nothing is counted twice
        response = client.post("/api/v1/outcomes", content=csv, headers={"content-type": "text/csv"})
        assert response.status_code == 200, response.text
        assert response.json() == {"recorded": 7}

    shown = figures_on_page(client, "sizes")
    assert shown["1"] == [
        "7 of 7 predictions",
        f"{mean_absolute_error(truth, predicted):.3g}",
        f"{mean_squared_error(truth, predicted) ** 0.5:.3g}",
    ]
    samples = parse_metrics(client.get("/metrics").text)
    assert value(samples, "apot_model_rmse", model="sizes", version="1") == pytest.approx(
        mean_squared_error(truth, predicted) ** 0.5
    )


def test_outcomes_are_scoped_to_the_jobs_owner_and_all_or_nothing(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry, admin: Account
) -> None:
    rows, truth = penguins(2)
    (job,) = scored_jobs(client, enqueue, registry, "penguins", rows)
    # The admin's key, sent instead of the member's: a job of someone else.
    made = client.post("/api/v1/jobs", json={"model": "penguins", "inputs": rows[0]}, headers=admin.bearer)
    theirs = made.json()["id"]
    enqueue.deliver(registry)

    # Another user's job is not found, per job and in a file; nothing of a refused request is stored.
    assert (
        client.post(f"/api/v1/jobs/{theirs}/outcomes", json={"outcomes": [{"row": 0, "outcome": "Adelie"}]}).status_code
        == 404
    )
    csv = f"job_id,row,outcome\n{job['id']},0,{truth[0]}\n{theirs},0,Adelie\n"
    refused = client.post("/api/v1/outcomes", content=csv, headers={"content-type": "text/csv"})
    assert refused.status_code == 422
    assert any(f"no job with id {theirs}" in error["msg"] for error in refused.json()["detail"])
    bad = client.post(
        f"/api/v1/jobs/{job['id']}/outcomes",
        json={
            "outcomes": [
                {"row": 0, "outcome": truth[0]},
                {"row": 1, "outcome": "Emperor"},
                {"row": 7, "outcome": "Adelie"},
            ]
        },
    )
    assert bad.status_code == 422
    problems = [error["msg"] for error in bad.json()["detail"]]
    assert any("'Emperor' is not one of the model's classes" in problem for problem in problems)
    assert any("row 7: no such row" in problem for problem in problems)
    assert figures_on_page(client, "penguins") == {}


def test_a_csv_jobs_rows_are_named_by_their_number_or_by_an_id_column_of_its_own_file(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry
) -> None:
    rows, truth = penguins(6)
    upload = pd.DataFrame(rows).assign(bird=[f"b-{n}" for n in (5, 3, 9, 1, 7, 7)])  # the last two share an id
    made = client.post(
        "/api/v1/jobs/csv",
        files={"file": ("birds.csv", upload.to_csv(index=False), "text/csv")},
        data={"model": "penguins"},
    )
    assert made.status_code == 202, made.text
    enqueue.deliver(registry)
    job = made.json()["id"]
    results = pd.read_csv(io.StringIO(client.get(f"/api/v1/jobs/{job}/results.csv").text))
    assert list(results["bird"]) == list(upload["bird"]), "the results file keeps the file's rows and their ids"

    by_id = f"job_id,bird,outcome\n{job},b-3,{truth[1]}\n{job},b-1,{truth[3]}\n"
    sent = client.post("/api/v1/outcomes", content=by_id, headers={"content-type": "text/csv"})
    assert sent.status_code == 200, sent.text
    by_number = f"job_id,row,outcome\n{job},0,{truth[0]}\n{job},1,{truth[1]}\n"  # row 1 is b-3: replaced, not added
    assert client.post("/api/v1/outcomes", content=by_number, headers={"content-type": "text/csv"}).json() == {
        "recorded": 2
    }
    predicted = results["prediction"].tolist()
    assert figures_on_page(client, "penguins")["1"][:2] == [
        "3 of 6 predictions",
        f"{accuracy_score([truth[0], truth[1], truth[3]], [predicted[0], predicted[1], predicted[3]]):.0%}",
    ]

    ambiguous = f"job_id,bird,outcome\n{job},b-7,Adelie\n{job},b-404,Adelie\n"
    refused = client.post("/api/v1/outcomes", content=ambiguous, headers={"content-type": "text/csv"})
    assert refused.status_code == 422
    problems = [error["msg"] for error in refused.json()["detail"]]
    assert problems == [
        f"line 2: job {job} bird 'b-7': 2 rows have it: name them by row",
        f"line 3: job {job} bird 'b-404': no row has it",
    ]
    unknown = client.post(
        "/api/v1/outcomes", content=f"job_id,tag,outcome\n{job},b-3,Adelie\n", headers={"content-type": "text/csv"}
    )
    assert unknown.status_code == 422
    assert "has no column 'tag'" in unknown.json()["detail"][0]["msg"]
