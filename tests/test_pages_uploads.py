"""The upload page: the form, its errors, and where a good upload leads."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.html import csrf_token, one, parse
from webapp.models import Job

GOOD = b"island,bill_length_mm,flipper_length_mm\nBiscoe,48.6,230\nDream,50,196\n"


def jobs(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(Job)) or 0


def test_the_form_offers_each_model_and_preselects_the_one_asked_for(client: TestClient) -> None:
    form = one(parse(client.get("/upload", params={"model": "penguins"}).text), "form#upload-form")
    assert form["enctype"] == "multipart/form-data"
    assert one(form, "#upload-model option[selected]")["value"] == "penguins"
    assert one(form, "input[type=file][name=file]")
    assert [r["value"] for r in form.select("input[name=on_error]")] == ["skip", "fail"]


def test_the_model_page_links_to_the_upload_tab(client: TestClient) -> None:
    tab = one(parse(client.get("/models/penguins").text), "nav.tabs a[href*='/upload']")
    assert tab["href"].endswith("/upload?model=penguins")  # type: ignore[union-attr]


def test_a_good_upload_opens_its_job_page(client: TestClient, engine: Engine) -> None:
    token = csrf_token(client, "/upload")
    response = client.post(
        "/upload",
        data={"csrf_token": token, "model": "penguins", "on_error": "skip"},
        files={"file": ("p.csv", GOOD, "text/csv")},
        follow_redirects=False,
    )
    assert response.status_code == 303
    with Session(engine) as session:
        (job,) = session.scalars(select(Job))
    assert response.headers["location"].endswith(f"/jobs/{job.id}")
    page = parse(client.get(response.headers["location"]).text)
    assert one(page, "article.status-card progress")["max"] == "2"
    assert one(page, "article.status-card form[action$='/cancel'] button").text == "Cancel"


def test_a_bad_file_comes_back_on_the_form_with_the_reason(client: TestClient, engine: Engine) -> None:
    token = csrf_token(client, "/upload")
    response = client.post(
        "/upload",
        data={"csrf_token": token, "model": "penguins", "on_error": "fail"},
        files={"file": ("p.csv", b"species\nAdelie\n", "text/csv")},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert response.status_code == 422
    form = one(parse(response.text), "form#upload-form")
    assert "lacks these required columns" in one(form, "#upload-file-error").text
    assert one(form, "input[name=on_error][checked]")["value"] == "fail"
    assert jobs(engine) == 0


def test_an_unknown_version_is_explained_next_to_the_version(client: TestClient, engine: Engine) -> None:
    token = csrf_token(client, "/upload")
    response = client.post(
        "/upload",
        data={"csrf_token": token, "model": "penguins", "version": "9"},
        files={"file": ("p.csv", GOOD, "text/csv")},
    )
    assert response.status_code == 422
    assert "version '9'" in one(parse(response.text), "#upload-version ~ .field-error").text
    assert jobs(engine) == 0


def test_an_upload_without_the_csrf_token_is_403(client: TestClient, engine: Engine) -> None:
    csrf_token(client, "/upload")
    response = client.post("/upload", data={"model": "penguins"}, files={"file": ("p.csv", GOOD, "text/csv")})
    assert response.status_code == 403 and jobs(engine) == 0


def test_cancel_from_the_page_shows_the_card_cancelled(client: TestClient) -> None:
    token = csrf_token(client, "/upload")
    location = client.post(
        "/upload",
        data={"csrf_token": token, "model": "penguins"},
        files={"file": ("p.csv", GOOD, "text/csv")},
        follow_redirects=False,
    ).headers["location"]
    card = client.post(f"{location}/cancel", headers={"HX-Request": "true", "X-CSRF-Token": token})
    assert one(parse(card.text), "article .badge").text == "cancelled"
    assert one(parse(card.text), "article a.button").text == "Download the partial results"
