"""`Prefer: wait=S` (RFC 7240) on POST /api/v1/jobs: the header's parsing, and the answer when nothing ends in time.

The answer when the job does end in time comes from a real worker: tests/e2e/test_pipeline.py.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from webapp.api.prefer import preferred_wait

GENTOO = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("", None),
        ("wait=5", 5.0),
        ("WAIT=2.5", 2.5),
        ("respond-async, wait=10", 10.0),
        ('wait="3"', 3.0),
        ("wait=3; foo=bar", 3.0),
        ("wait=600", 30.0),  # capped at the longest wait the server allows
        ("respond-async", None),
        ("wait=soon", None),
        ("wait=-1", None),
        ("wait=nan", None),
        ("wait=inf", None),
    ],
)
def test_the_wait_preference_is_read_as_the_rfc_says(header: str | None, seconds: float | None) -> None:
    assert preferred_wait(header, 30) == seconds


def test_a_job_that_does_not_end_in_time_is_answered_202_as_usual(client: TestClient) -> None:
    # No worker runs in this test: the job stays queued.
    response = client.post("/api/v1/jobs", json={"model": "penguins", "inputs": GENTOO}, headers={"Prefer": "wait=0.2"})

    assert response.status_code == 202
    assert response.headers["Preference-Applied"] == "wait=0.2"
    assert response.json()["status"] == "queued"
    assert response.headers["Location"] == response.json()["url"]


def test_without_the_preference_nothing_waits_and_nothing_is_said_about_it(client: TestClient) -> None:
    response = client.post("/api/v1/jobs", json={"model": "penguins", "inputs": GENTOO}, headers={"Prefer": "x=1"})

    assert response.status_code == 202
    assert "Preference-Applied" not in response.headers
