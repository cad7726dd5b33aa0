"""The predict page: a form generated from the model's schema, CSRF-protected, answering htmx and plain posts."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.conftest import RecordingEnqueue
from tests.html import csrf_token, one, parse
from webapp.http.security import CSRF_COOKIE
from webapp.models import Job

FORM = {"island": "Biscoe", "bill_length_mm": "48.6", "flipper_length_mm": "230", "sex": "male", "body_mass_g": ""}
HTMX = {"HX-Request": "true"}


def jobs_in(engine: Engine) -> list[Job]:
    with Session(engine) as session:
        return list(session.scalars(select(Job)))


def test_the_form_has_a_field_per_feature_named_as_the_feature(client: TestClient) -> None:
    page = parse(client.get("/models/penguins").text)
    form = one(page, "form#predict-form")
    names = [field["name"] for field in form.select("input:not([type=hidden]), select")]
    assert names == ["island", "bill_length_mm", "flipper_length_mm", "bill_depth_mm", "body_mass_g", "sex"]


def test_categories_are_selects_with_their_choices(client: TestClient) -> None:
    page = parse(client.get("/models/penguins").text)
    island = one(page, "select[name=island]")
    assert [o["value"] for o in island.select("option")] == ["", "Biscoe", "Dream", "Torgersen"]
    assert island.has_attr("required")
    sex = one(page, "select[name=sex]")
    assert not sex.has_attr("required")
    assert "Optional" in one(page, "#f-sex-hint").text


def test_numbers_carry_their_step_and_training_range_as_a_hint_not_a_limit(client: TestClient) -> None:
    page = parse(client.get("/models/penguins").text)
    bill = one(page, "input[name=bill_length_mm]")
    assert (bill["type"], bill["step"]) == ("number", "any")
    assert not bill.has_attr("max"), "a value outside the training range is scored, with a warning"
    assert one(page, "#f-bill_length_mm-hint").text.startswith("32.1 to 59.6 seen in training")
    flipper = one(page, "input[name=flipper_length_mm]")
    assert flipper["step"] == "1"
    assert bill.has_attr("required") and not one(page, "input[name=bill_depth_mm]").has_attr("required")
    for field in page.select("form#predict-form input:not([type=hidden]), form#predict-form select"):
        assert one(page, f"label[for={field['id']}]"), f"{field['name']} has no label"


def test_an_unknown_model_is_a_404_page(client: TestClient) -> None:
    response = client.get("/models/unicorns", headers={"accept": "text/html"})
    assert response.status_code == 404
    assert "unicorns" in one(parse(response.text), ".error-page").text


def test_a_plain_post_creates_a_job_and_redirects_to_it(
    client: TestClient, engine: Engine, enqueue: RecordingEnqueue
) -> None:
    token = csrf_token(client)
    response = client.post("/models/penguins/jobs", data={**FORM, "csrf_token": token}, follow_redirects=False)

    assert response.status_code == 303
    (job,) = jobs_in(engine)
    assert response.headers["location"].endswith(f"/jobs/{job.id}")
    assert enqueue.published == [str(job.id)]
    assert job.inputs == [
        {
            "island": "Biscoe",
            "bill_length_mm": 48.6,
            "flipper_length_mm": 230,
            "bill_depth_mm": None,
            "body_mass_g": None,
            "sex": "male",
        }
    ]


def test_an_htmx_post_answers_with_a_live_status_card(client: TestClient, engine: Engine) -> None:
    token = csrf_token(client)
    response = client.post("/models/penguins/jobs", data=FORM, headers={**HTMX, "X-CSRF-Token": token})

    assert response.status_code == 200
    fragment = parse(response.text)
    assert fragment.find("html") is None, "htmx gets a fragment, not a page"
    card = one(fragment, "article.status-card")
    (job,) = jobs_in(engine)
    assert str(card["hx-get"]).endswith(f"/jobs/{job.id}/status")
    assert str(card["hx-trigger"]).startswith("every ")
    assert one(card, ".badge").text == "queued"


def test_htmx_validation_errors_replace_the_form_with_messages_and_the_users_values(
    client: TestClient, engine: Engine
) -> None:
    token = csrf_token(client)
    bad = {**FORM, "island": "Mars", "bill_length_mm": "long"}
    response = client.post("/models/penguins/jobs", data=bad, headers={**HTMX, "X-CSRF-Token": token})

    assert response.status_code == 422
    assert response.headers["HX-Retarget"] == "#predict-form"
    form = one(parse(response.text), "form#predict-form")
    assert "Biscoe" in one(form, "#f-island-error").text
    assert one(form, "#f-bill_length_mm-error").text == "Input should be a valid number"
    assert one(form, "input[name=bill_length_mm]")["value"] == "long"
    assert one(form, "input[name=flipper_length_mm]")["value"] == "230"
    assert one(form, "select[name=sex] option[selected]")["value"] == "male"
    assert one(form, "input[name=bill_length_mm]")["aria-invalid"] == "true"
    assert jobs_in(engine) == []


def test_plain_validation_errors_come_back_as_the_whole_page(client: TestClient) -> None:
    token = csrf_token(client)
    response = client.post("/models/penguins/jobs", data={"csrf_token": token, "island": "Dream"})
    assert response.status_code == 422
    page = parse(response.text)
    assert page.find("html") is not None
    assert one(page, "#f-bill_length_mm-error").text == "Field required"


@pytest.mark.parametrize(
    "sent",
    [
        {},  # no token at all
        {"data": {"csrf_token": "0" * 64}},
        {"headers": {"X-CSRF-Token": "nope"}},
    ],
)
def test_a_post_without_this_browsers_token_is_403_and_creates_nothing(
    client: TestClient, engine: Engine, sent: dict[str, dict[str, str]]
) -> None:
    csrf_token(client)  # the browser has a cookie; the attacker's page does not know the token
    response = client.post(
        "/models/penguins/jobs", data={**FORM, **sent.get("data", {})}, headers=sent.get("headers", {})
    )
    assert response.status_code == 403
    assert jobs_in(engine) == []


def test_a_post_from_another_origin_is_403_even_with_a_token(client: TestClient, engine: Engine) -> None:
    token = csrf_token(client)
    response = client.post(
        "/models/penguins/jobs",
        data={**FORM, "csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert jobs_in(engine) == []


def test_a_token_from_another_browser_does_not_pass(client: TestClient, settings: object, engine: Engine) -> None:
    token = csrf_token(client)
    client.cookies.delete(CSRF_COOKIE)
    csrf_token(client)  # a fresh cookie: the old token belongs to another seed
    response = client.post("/models/penguins/jobs", data={**FORM, "csrf_token": token})
    assert response.status_code == 403


def test_job_id_in_status_url_must_be_a_uuid(client: TestClient) -> None:
    assert client.get(f"/jobs/{uuid.uuid4()}/status").status_code == 404


def test_a_regressors_card_shows_the_predicted_value(client: TestClient, engine: Engine, models_dir: object) -> None:
    from sqlalchemy import update

    from webapp.models import utcnow

    token = csrf_token(client, "/models/sizes")
    response = client.post(
        "/models/sizes/jobs", data={"size": "2", "colour": "red"}, headers={**HTMX, "X-CSRF-Token": token}
    )
    (job,) = jobs_in(engine)
    with Session(engine) as session, session.begin():
        session.execute(
            update(Job)
            .where(Job.id == job.id)
            .values(status="succeeded", finished_at=utcnow(), result={"predictions": [{"value": 20.0}]})
        )
    card = parse(client.get(f"/jobs/{job.id}/status", headers=HTMX).text)
    assert response.status_code == 200
    assert one(card, ".prediction strong").text == "20"
