"""A CSV job's whole path on each stack: upload → chunks in the database → worker processes → results download."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import httpx2
import pandas as pd
import pytest

from ml.demo import write_sample_csv
from tests.html import parse
from tests.stacks import Stack

ROWS = 50_000


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sample_csv(tmp_path_factory.mktemp("csv") / "penguins.csv", ROWS, seed=7)


def upload(stack: Stack, path: Path, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Upload the file as the stack's admin (or whoever `headers` authenticate); the 202's job."""
    with path.open("rb") as f:
        response = httpx2.post(
            f"{stack.base_url}/api/v1/jobs/csv",
            files={"file": (path.name, f, "text/csv")},
            data={"model": "penguins"},
            headers=headers or stack.auth,
            timeout=120,
        )
    assert response.status_code == 202, response.text
    return dict(response.json())


def current(stack: Stack, job: dict[str, Any]) -> dict[str, Any]:
    """The job as the API shows it now."""
    return dict(httpx2.get(job["url"], headers=stack.auth, timeout=10).json())


def test_a_50k_row_file_is_scored_in_order_with_every_count_right(stack: Stack, sample: Path) -> None:
    created = upload(stack, sample)
    job = httpx2.get(created["url"], params={"wait": 30}, headers=stack.auth, timeout=40).json()
    assert job["status"] == "succeeded", f"{job}\n{stack.logs.read_text()[-3000:]}"

    response = httpx2.get(job["results_url"], headers=stack.auth, timeout=60)
    result = pd.read_csv(io.StringIO(response.text), keep_default_na=False, dtype=str)
    original = pd.read_csv(sample, keep_default_na=False, dtype=str)
    assert len(result) == ROWS == job["rows_total"] == job["rows_done"]
    assert (result[original.columns] == original).all().all(), "input columns come back unchanged, in order"
    bad = result["error"] != ""
    assert job["rows_failed"] == int(bad.sum())
    probabilities = result.loc[~bad, ["probability_Adelie", "probability_Chinstrap", "probability_Gentoo"]]
    assert (probabilities.astype(float).sum(axis=1) - 1).abs().max() < 1e-5
    assert set(result.loc[~bad, "prediction"]) <= {"Adelie", "Chinstrap", "Gentoo"}
    # The job page's chart counts what the file holds, as the workers tallied it chunk by chunk.
    cookie = stack.session_cookie()
    page = parse(httpx2.get(f"{stack.base_url}/jobs/{job['id']}", cookies={cookie["name"]: cookie["value"]}).text)
    cells = [tr.select("th, td") for tr in page.select("#results figure.chart table tbody tr")]
    chart = {label.text: int(count.text.replace(",", "")) for label, count in cells}
    assert chart == result.loc[~bad, "prediction"].value_counts().to_dict()
    assert len(page.select("table.bad-rows tbody tr")) == min(int(bad.sum()), 50)


def test_cancelling_midway_stops_the_rest_and_keeps_what_was_scored(stack: Stack, sample: Path) -> None:
    created = upload(stack, sample)
    deadline = time.monotonic() + 30
    while current(stack, created)["rows_done"] == 0 and time.monotonic() < deadline:
        time.sleep(0.005)

    response = httpx2.post(f"{created['url']}/cancel", headers=stack.auth, timeout=10)

    assert response.status_code == 200, f"cancel came too late (25 chunks, one worker process): {response.text}"
    assert response.json()["status"] == "cancelled"
    time.sleep(1.0)  # chunks already running finish; no new one starts
    job = current(stack, created)
    assert job["status"] == "cancelled"
    assert 0 < job["rows_done"] < ROWS
    rows = list(csv.DictReader(io.StringIO(httpx2.get(job["results_url"], headers=stack.auth, timeout=60).text)))
    assert len(rows) == ROWS
    scored = [r for r in rows if r["prediction"]]
    assert len(scored) == job["rows_done"] - job["rows_failed"]
    assert any(r["error"].startswith("not scored") for r in rows)
