"""A regressor through a real worker on each stack: the dashboard form, and a CSV file."""

from __future__ import annotations

import csv
import io
import time

import httpx2
import pytest

from tests.html import one, parse
from tests.models import sizes_v2
from tests.stacks import Stack
from webapp.services.models import REGISTRY_CACHE_SECONDS


def test_a_regressor_through_the_form_shows_its_value(stack: Stack) -> None:
    cookie = stack.session_cookie()
    # Signed in, and keeping the CSRF cookie as a browser does; it reads the API with its session too.
    with httpx2.Client(base_url=stack.base_url, cookies={cookie["name"]: cookie["value"]}, timeout=30) as browser:
        page = parse(browser.get("/models/sizes").text)
        token = str(one(page, "#predict-form input[name=csrf_token]")["value"])
        created = browser.post(
            "/models/sizes/jobs", data={"size": "2", "colour": "red", "csrf_token": token}, follow_redirects=False
        )
        assert created.status_code == 303
        job_id = created.headers["location"].rsplit("/", 1)[-1]
        job = browser.get(f"/api/v1/jobs/{job_id}", params={"wait": 30}).json()
        assert job["status"] == "succeeded", job
        assert job["result"]["predictions"][0]["value"] == pytest.approx(20.0)
        card = parse(browser.get(f"/jobs/{job_id}/status", headers={"HX-Request": "true"}).text)
        assert one(card, ".prediction strong").text == "20"


def test_a_regressor_scores_a_csv_file(stack: Stack) -> None:
    content = b"size,colour\n" + b"".join(f"{i % 4 + 1},{'red' if i % 2 else 'blue'}\n".encode() for i in range(500))
    created = httpx2.post(
        f"{stack.base_url}/api/v1/jobs/csv",
        files={"file": ("sizes.csv", content, "text/csv")},
        data={"model": "sizes"},
        headers=stack.auth,
        timeout=30,
    ).json()
    job = httpx2.get(created["url"], params={"wait": 30}, headers=stack.auth, timeout=40).json()
    assert job["status"] == "succeeded" and job["rows_done"] == 500
    rows = list(csv.DictReader(io.StringIO(httpx2.get(job["results_url"], headers=stack.auth, timeout=30).text)))
    assert list(rows[0]) == ["size", "colour", "prediction", "error", "warnings"]
    assert [float(r["prediction"]) for r in rows[:4]] == pytest.approx([10.0, 20.0, 30.0, 40.0])


def test_running_workers_follow_a_new_default_version(stack: Stack) -> None:
    def predict() -> tuple[str, float]:
        created = httpx2.post(
            f"{stack.base_url}/api/v1/jobs",
            json={"model": "sizes", "inputs": {"size": 2, "colour": "red"}},
            headers=stack.auth,
            timeout=10,
        ).json()
        job = httpx2.get(created["url"], params={"wait": 30}, headers=stack.auth, timeout=40).json()
        return job["version"], job["result"]["predictions"][0]["value"]

    assert predict() == ("1", pytest.approx(20.0))
    sizes_v2(stack.models)
    stack.models.set_default("sizes", "2")  # no process is restarted
    # The web server trusts what it read from the registry for REGISTRY_CACHE_SECONDS.
    time.sleep(REGISTRY_CACHE_SECONDS)
    assert predict() == ("2", pytest.approx(40.0))
    stack.models.set_default("sizes", "1")
