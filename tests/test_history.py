"""The history's filters (status, model, days, user), its total, its CSV export and its cursors, the same in the
pages and in GET /api/v1/jobs; a member never sees or exports another user's jobs."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.accounts import Account
from tests.factories import add_job
from tests.html import one, parse
from webapp.services import history

DAY = datetime(2026, 11, 30, tzinfo=UTC)


@pytest.fixture
def jobs(engine: Engine, member: Account, admin: Account) -> dict[str, str]:
    """Mia's and Ada's jobs on either side of midnight UTC, of two models and two statuses."""
    mia, ada = member.principal.user_id, admin.principal.user_id
    made = {
        "mia-early": make(engine, owner_id=mia, created_at=DAY - timedelta(hours=1)),
        "mia-late-failed": make(engine, owner_id=mia, created_at=DAY + timedelta(minutes=30), status="failed"),
        "mia-next-day": make(engine, owner_id=mia, created_at=DAY + timedelta(days=1), model_name="other"),
        "ada-late": make(engine, owner_id=ada, created_at=DAY + timedelta(minutes=45), error="=HYPERLINK(1)"),
    }
    return made


def make(engine: Engine, **values: Any) -> str:
    """A job's id (given here: the row `add_job` returns has been committed, so expired)."""
    job_id = uuid.uuid4()
    add_job(engine, id=job_id, **values)
    return str(job_id)


def api_ids(client: TestClient, **params: Any) -> list[str]:
    response = client.get("/api/v1/jobs", params=params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def exported(client: TestClient, **params: Any) -> list[dict[str, str]]:
    response = client.get("/jobs.csv", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(response.text)))


def page_ids(client: TestClient, **params: Any) -> list[str]:
    soup = parse(client.get("/jobs", params=params).text)
    return [str(row["id"]).removeprefix("row-") for row in soup.select("#results tbody tr")]


def test_api_filters_combine(admin_client: TestClient, jobs: dict[str, str]) -> None:
    after, before = DAY.isoformat(), (DAY + timedelta(days=1)).isoformat()
    assert api_ids(admin_client, created_after=after) == [
        jobs["mia-next-day"],
        jobs["ada-late"],
        jobs["mia-late-failed"],
    ]
    # created_before is exclusive, created_after inclusive: the next day's job starts exactly at `before`.
    assert api_ids(admin_client, created_after=after, created_before=before) == [
        jobs["ada-late"],
        jobs["mia-late-failed"],
    ]
    assert api_ids(admin_client, created_after=after, created_before=before, user="mia") == [jobs["mia-late-failed"]]
    assert api_ids(admin_client, created_after=after, status="succeeded", model="sizes") == [jobs["ada-late"]]
    # The offset is honoured.
    assert api_ids(admin_client, created_before="2026-11-30T01:00:00+01:00") == [jobs["mia-early"]]
    assert api_ids(admin_client, created_before="2026-11-29T23:00:00.000001z") == [jobs["mia-early"]]


# Neither a bare date, nor a number of seconds, nor a moment without an offset: RFC 3339, as the schema says.
@pytest.mark.parametrize(
    "moment",
    ["yesterday", "2026-13-01T00:00:00Z", "2026-11-30T25:00:00Z", "", "2026-11-30", "0.5", "2026-11-30T00:00:00"],
)
def test_bad_dates_are_422(client: TestClient, moment: str) -> None:
    for name in ("created_after", "created_before"):
        response = client.get("/api/v1/jobs", params={name: moment})
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["query", name]


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_moments_at_the_ends_of_the_calendar_are_answered(
    admin_client: TestClient, jobs: dict[str, str], moment: str
) -> None:
    assert len(api_ids(admin_client, created_after=moment)) in (0, 4)
    assert len(api_ids(admin_client, created_before=moment)) in (0, 4)


def test_a_member_sees_and_exports_only_their_own_jobs(client: TestClient, jobs: dict[str, str]) -> None:
    mine = {jobs["mia-early"], jobs["mia-late-failed"], jobs["mia-next-day"]}
    for params in ({}, {"user": "ada"}):
        assert set(api_ids(client, **params)) == mine
        assert set(page_ids(client, **params)) == mine
        rows = exported(client, **params)
        assert {row["id"] for row in rows} == mine
        assert "user" not in rows[0]
    assert jobs["ada-late"] not in client.get("/jobs.csv", params={"user": "ada"}).text
    page = parse(client.get("/jobs").text)
    assert not page.select("#filter-user") and "User" not in [th.text for th in page.select("thead th")]


def test_an_admin_sees_the_user_column_and_filters_by_user(admin_client: TestClient, jobs: dict[str, str]) -> None:
    soup = parse(admin_client.get("/jobs").text)
    assert [th.text for th in soup.select("thead th")][:2] == ["Job", "User"]
    users = {
        str(row["id"]).removeprefix("row-"): one(row, "td[data-label=User]").text for row in soup.select("tbody tr")
    }
    assert users[jobs["ada-late"]] == "ada" and users[jobs["mia-early"]] == "mia"
    assert [o["value"] for o in soup.select("#filter-user option")] == ["", "ada", "mia"]
    rows = exported(admin_client, user="mia")
    assert {row["user"] for row in rows} == {"mia"} and len(rows) == 3
    assert admin_client.get("/jobs.csv", params={"user": "nobody"}).status_code == 404


def test_the_api_exports_what_it_lists(client: TestClient, admin_client: TestClient, jobs: dict[str, str]) -> None:
    after = {"created_after": DAY.isoformat()}
    for who, params in ((admin_client, after), (client, {**after, "user": "ada"})):
        response = who.get("/api/v1/jobs.csv", params=params)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert [row["id"] for row in rows] == api_ids(who, **params)
    assert "user" not in rows[0]  # a member's export: their own jobs, without the column
    assert client.get("/api/v1/jobs.csv", params={"created_after": "0.5"}).status_code == 422


def test_the_export_is_the_filtered_list(admin_client: TestClient, jobs: dict[str, str]) -> None:
    params = {"from": "2026-11-30", "to": "2026-11-30", "tz": "UTC", "model": "sizes"}
    listed = page_ids(admin_client, **params)
    assert listed == [jobs["ada-late"], jobs["mia-late-failed"]]
    soup = parse(admin_client.get("/jobs", params=params).text)
    href = httpx2.URL(str(one(soup, "a[download]")["href"]))
    assert href.path == "/jobs.csv"
    rows = exported(admin_client, **dict(href.params))
    assert [row["id"] for row in rows] == listed
    # A cell a spreadsheet would run is neutralised.
    assert rows[0]["error"] == "'=HYPERLINK(1)"
    assert rows[1]["status"] == "failed" and rows[1]["created_at"].startswith("2026-11-30T00:30:00")


def test_days_are_the_readers_in_their_time_zone(client: TestClient, jobs: dict[str, str]) -> None:
    # 23:00 UTC on the 29th is already the 30th in Paris (UTC+1 in November).
    assert page_ids(client, **{"from": "2026-11-30", "to": "2026-11-30", "tz": "Europe/Paris"}) == [
        jobs["mia-late-failed"],
        jobs["mia-early"],
    ]
    assert page_ids(client, **{"from": "2026-11-30", "to": "2026-11-30"}) == [jobs["mia-late-failed"]]
    # An unknown zone is UTC; a date that is none is left out, and the page says so.
    assert page_ids(client, **{"to": "2026-11-29", "tz": "Mars/Olympus"}) == [jobs["mia-early"]]
    html = client.get("/jobs", params={"from": "someday"}).text
    assert "“someday” is not a date" in html and len(page_ids(client, **{"from": "someday"})) == 3


def test_the_total_counts_every_match_up_to_a_cap(
    client: TestClient, jobs: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    body = client.get("/api/v1/jobs", params={"total": "true", "limit": 1}).json()
    assert (body["total"], body["total_capped"], len(body["items"])) == (3, False, 1)
    assert "3 jobs" in one(parse(client.get("/jobs").text), ".history-total").text
    monkeypatch.setattr(history, "COUNT_CAP", 2)
    body = client.get("/api/v1/jobs", params={"total": "true"}).json()
    assert (body["total"], body["total_capped"]) == (2, True)
    assert "More than 2 jobs" in client.get("/jobs").text


def test_a_cursor_continues_only_its_own_filters(admin_client: TestClient, jobs: dict[str, str]) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 1, "model": "sizes", **({"cursor": cursor} if cursor else {})}
        body = admin_client.get("/api/v1/jobs", params=params).json()
        seen += [item["id"] for item in body["items"]]
        if (cursor := body["next_cursor"]) is None:
            break
        other = admin_client.get("/api/v1/jobs", params={"cursor": cursor, "model": "other"})
        assert other.status_code == 422 and "other filters" in other.text
    assert seen == [jobs["ada-late"], jobs["mia-late-failed"], jobs["mia-early"]]
    first = admin_client.get("/jobs", params={"model": "sizes"}).text  # a page's cursor, given to other filters
    assert "Older" not in first
    stale = admin_client.get("/jobs", params={"cursor": "bogus", "status": "failed"}).text
    assert "out of date" in stale and jobs["mia-late-failed"] in stale


def test_the_export_is_bounded_and_read_in_batches(
    client: TestClient, engine: Engine, member: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = [make(engine, owner_id=member.principal.user_id, created_at=DAY + timedelta(seconds=i)) for i in range(5)]
    monkeypatch.setattr(history, "EXPORT_BATCH", 2)
    assert [row["id"] for row in exported(client)] == made[::-1]
    monkeypatch.setattr(history, "EXPORT_MAX_ROWS", 3)
    assert [row["id"] for row in exported(client)] == made[:1:-1]


def test_a_running_csv_job_shows_its_progress_until_it_ends(
    client: TestClient, engine: Engine, member: Account
) -> None:
    job_id = make(
        engine, owner_id=member.principal.user_id, kind="csv", status="running", rows_total=400, rows_done=100
    )
    row = one(parse(client.get("/jobs").text), f"#row-{job_id}")
    assert row["hx-trigger"] == "every 1s"
    assert one(row, "progress")["value"] == "100" and "100 of 400 rows" in row.text
    polled = parse(client.get(f"/jobs/{job_id}/row").text).select_one("tr")
    assert polled is not None and polled.select_one("progress") is not None
    done_id = make(engine, owner_id=member.principal.user_id, kind="csv", rows_total=400, rows_done=400)
    ended = parse(client.get(f"/jobs/{done_id}/row").text).select_one("tr")
    assert ended is not None and not ended.has_attr("hx-trigger") and ended.select_one("progress") is None
