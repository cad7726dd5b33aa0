"""A job page's live part: the whole layout polls until the job ends, so a batch's predictions appear by themselves;
a one-row job's page links to its model's form filled with its inputs."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import RecordingEnqueue
from tests.html import one, parse
from webapp.services.models import ModelRegistry

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
HTMX = {"HX-Request": "true"}
GENTOO = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}


def test_a_batch_jobs_live_fragment_brings_its_predictions_and_then_stops_polling(
    client: TestClient, registry: ModelRegistry, enqueue: RecordingEnqueue
) -> None:
    job = client.post("/api/v1/jobs", json={"model": "penguins", "inputs": [GENTOO, GENTOO]}).json()
    queued = one(parse(client.get(f"/jobs/{job['id']}", headers=HTMX).text), "#job-live")
    assert queued.has_attr("hx-get") and not queued.select("th:-soup-contains('Prediction')")

    enqueue.deliver(registry)
    ended = one(parse(client.get(f"/jobs/{job['id']}", headers=HTMX).text), "#job-live")

    assert not ended.has_attr("hx-get"), "an ended job's page polls no more"
    assert [td.text.split()[0] for td in ended.select("tbody tr td:last-child")] == ["Gentoo", "Gentoo"]
    assert "2 predictions, in the table below" in one(ended, "article.status-card").text


def test_edit_and_run_again_opens_the_form_filled_with_the_jobs_inputs(client: TestClient) -> None:
    job = client.post("/api/v1/jobs", json={"model": "penguins", "inputs": GENTOO}).json()
    page = parse(client.get(f"/jobs/{job['id']}").text)
    link = str(one(page, "a:-soup-contains('Edit and run again')")["href"])

    form = one(parse(client.get(link).text), "form#predict-form")

    assert one(form, "select[name=island] option[selected]")["value"] == "Biscoe"
    assert one(form, "input[name=bill_length_mm]")["value"] == "48.6"
    assert one(form, "input[name=flipper_length_mm]")["value"] == "230"
    assert one(form, "select[name=sex] option[selected]")["value"] == "male"
    assert one(form, "input[name=body_mass_g]")["value"] == "", "what the job left out stays empty"
