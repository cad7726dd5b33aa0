"""History, job pages and the fragments htmx polls: what users see of their jobs."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from tests.conftest import RecordingEnqueue
from tests.html import csrf_token, one, parse
from webapp.models import Job, utcnow

PENGUIN = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}
RESULT = {"predictions": [{"label": "Gentoo", "probabilities": {"Adelie": 0.05, "Chinstrap": 0.05, "Gentoo": 0.9}}]}
HTMX = {"HX-Request": "true"}


def submit(client: TestClient, inputs: Any = PENGUIN) -> str:
    response = client.post("/api/v1/jobs", json={"model": "penguins", "inputs": inputs})
    assert response.status_code == 202
    return str(response.json()["id"])


def set_job(engine: Engine, job_id: str, **values: Any) -> None:
    with Session(engine) as session, session.begin():
        session.execute(update(Job).where(Job.id == uuid.UUID(job_id)).values(**values))


def succeed(engine: Engine, job_id: str) -> None:
    now = utcnow()
    set_job(engine, job_id, status="succeeded", started_at=now - timedelta(seconds=2), finished_at=now, result=RESULT)


def test_home_lists_models_and_latest_jobs(client: TestClient) -> None:
    job_id = submit(client)
    page = parse(client.get("/").text)
    assert one(page, "a[href$='/models/penguins']").text == "penguins"
    assert one(page, f"a[href$='/jobs/{job_id}']")


def test_an_empty_history_says_what_to_do(client: TestClient) -> None:
    results = one(parse(client.get("/jobs").text), "#results")
    assert "No jobs yet" in results.text
    assert one(results, "a[href$='/']")


def test_history_lists_jobs_newest_first_with_badges_and_durations(client: TestClient, engine: Engine) -> None:
    older, newer = submit(client), submit(client)
    succeed(engine, older)
    rows = parse(client.get("/jobs").text).select("table.jobs tbody tr")
    assert [row["id"] for row in rows] == [f"row-{newer}", f"row-{older}"]
    assert [one(row, ".badge").text for row in rows] == ["queued", "succeeded"]
    assert rows[1].select("td")[-1].text == "2.0 s"


def test_rows_of_unfinished_jobs_poll_and_finished_ones_do_not(client: TestClient, engine: Engine) -> None:
    running, done = submit(client), submit(client)
    set_job(engine, running, status="running", started_at=utcnow())
    succeed(engine, done)
    page = parse(client.get("/jobs").text)
    assert str(one(page, f"#row-{running}")["hx-get"]).endswith(f"/jobs/{running}/row")
    assert not one(page, f"#row-{done}").has_attr("hx-trigger")
    row = parse(client.get(f"/jobs/{running}/row", headers=HTMX).text)
    assert one(row, "tr")["hx-trigger"] == "every 1s"


def test_filters_keep_to_their_status_and_model(client: TestClient, engine: Engine) -> None:
    submit(client)
    done = submit(client)
    succeed(engine, done)
    page = parse(client.get("/jobs", params={"status": "succeeded"}).text)
    assert [row["id"] for row in page.select("table.jobs tbody tr")] == [f"row-{done}"]
    assert one(page, "#filter-status option[selected]")["value"] == "succeeded"
    empty = parse(client.get("/jobs", params={"model": "unicorns"}).text)
    assert "No jobs match" in one(empty, "#results").text


def test_htmx_gets_only_the_results_fragment(client: TestClient) -> None:
    submit(client)
    fragment = parse(client.get("/jobs", headers=HTMX).text)
    assert fragment.find("html") is None
    assert one(fragment, "section#results")
    assert fragment.find("form") is None


def test_history_pages_through_every_job_once(client: TestClient) -> None:
    from webapp.pages import history as history_pages

    ids = [submit(client) for _ in range(5)]
    original, history_pages.PAGE_SIZE = history_pages.PAGE_SIZE, 2
    try:
        seen: list[str] = []
        url: str | None = "/jobs"
        while url:
            page = parse(client.get(url).text)
            seen += [str(row["id"]).removeprefix("row-") for row in page.select("table.jobs tbody tr")]
            older = page.select_one("a[rel=next]")
            url = str(older["href"]) if older else None
    finally:
        history_pages.PAGE_SIZE = original
    assert seen == ids[::-1]


def test_looking_up_a_job_by_id(client: TestClient) -> None:
    job_id = submit(client)
    found = client.get("/jobs", params={"find": job_id}, follow_redirects=False)
    assert found.status_code == 303 and found.headers["location"].endswith(f"/jobs/{job_id}")
    missing = parse(client.get("/jobs", params={"find": str(uuid.uuid4())}).text)
    assert "There is no job with id" in one(missing, ".notice").text
    garbage = parse(client.get("/jobs", params={"find": "<script>"}).text)
    notice = one(garbage, ".notice")
    assert "“<script>” is not a job id" in notice.text and notice.find("script") is None


def test_the_job_page_shows_inputs_outputs_timings_and_actions(client: TestClient, engine: Engine) -> None:
    job_id = submit(client)
    succeed(engine, job_id)
    page = parse(client.get(f"/jobs/{job_id}").text)
    inputs = {one(r, "th").text: one(r, "td").text for r in page.select("table.inputs tr")}
    assert inputs["island"] == "Biscoe" and inputs["bill_depth_mm"] == "not given"
    assert one(page, ".prediction strong").text == "Gentoo"
    assert [m["value"] for m in page.select(".probabilities meter")] == ["0.05", "0.05", "0.9"]
    terms, details = page.select("dl.facts dt"), page.select("dl.facts dd")
    facts = {dt.text: dd.text for dt, dd in zip(terms, details, strict=True)}
    assert {"Queued", "Started", "Finished", "Celery task"} <= set(facts)
    assert "ran 2.0 s" in facts["Finished"]
    assert one(page, f"form[action$='/jobs/{job_id}/rerun'] button").text == "Run again"
    assert one(page, f"a[href$='/api/v1/jobs/{job_id}']")
    assert not one(page, "article.status-card").has_attr("hx-trigger"), "an ended job's card must not poll"


def test_a_failed_job_shows_its_error(client: TestClient, engine: Engine) -> None:
    job_id = submit(client)
    set_job(engine, job_id, status="failed", finished_at=utcnow(), error="model file changed: refusing to load")
    page = parse(client.get(f"/jobs/{job_id}").text)
    assert "refusing to load" in one(page, "article.status-card .field-error").text
    assert one(page, "article.status-card .badge").text == "failed"


def test_the_status_card_polls_until_the_job_ends(client: TestClient, engine: Engine) -> None:
    job_id = submit(client)
    card = one(parse(client.get(f"/jobs/{job_id}/status", headers=HTMX).text), "article")
    assert card["hx-trigger"] == "every 500ms" and card["hx-swap"] == "outerHTML"
    succeed(engine, job_id)
    card = one(parse(client.get(f"/jobs/{job_id}/status", headers=HTMX).text), "article")
    assert not card.has_attr("hx-trigger") and not card.has_attr("hx-get")


def test_run_again_makes_a_new_job_with_the_same_inputs(
    client: TestClient, engine: Engine, enqueue: RecordingEnqueue
) -> None:
    first = submit(client, [PENGUIN, {**PENGUIN, "island": "Dream"}])
    token = csrf_token(client, f"/jobs/{first}")
    response = client.post(f"/jobs/{first}/rerun", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    with Session(engine) as session:
        jobs = {str(j.id): j for j in session.scalars(select(Job))}
    (second,) = set(jobs) - {first}
    assert response.headers["location"].endswith(f"/jobs/{second}")
    assert jobs[second].inputs == jobs[first].inputs and jobs[second].kind == "batch"
    assert enqueue.published == [first, second]

    htmx = client.post(f"/jobs/{first}/rerun", headers={**HTMX, "X-CSRF-Token": token})
    assert htmx.status_code == 204 and "/jobs/" in htmx.headers["HX-Redirect"]


def test_run_again_needs_the_csrf_token(client: TestClient, enqueue: RecordingEnqueue) -> None:
    first = submit(client)
    assert client.post(f"/jobs/{first}/rerun").status_code == 403
    assert enqueue.published == [first]


def test_user_text_is_escaped(client: TestClient, engine: Engine) -> None:
    job_id = submit(client)
    set_job(engine, job_id, status="failed", finished_at=utcnow(), error="<img src=x onerror=alert(1)>")
    page = parse(client.get(f"/jobs/{job_id}").text)
    assert page.find("img") is None
    assert "<img src=x" in one(page, "article.status-card .field-error").text
