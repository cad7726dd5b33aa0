"""A CSV job's results in its page: the first rows, the spread of the predictions, every bad row a page at a time;
for succeeded, failed, cancelled and running jobs, each read bounded (tests/browser shows the page in Chromium)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ml.predict import Output
from ml.table import ScoredTable
from tests.accounts import Account
from tests.conftest import RecordingEnqueue, worker_context
from tests.html import one, parse
from webapp.models import Job
from webapp.services import csv_results
from webapp.services.chunk_scoring import score_chunk
from webapp.services.csv_results import _distribution, merged, tally
from webapp.services.models import ModelRegistry

HEADER = "island,bill_length_mm,flipper_length_mm,sex\n"


def penguins(rows: int, bad_every: int = 0) -> bytes:
    """`rows` rows, every `bad_every`-th (counting from 1) with a bill length that is not a number."""
    lines = [
        f"{'Biscoe' if n % 2 else 'Torgersen'},{'abc' if bad_every and n % bad_every == 0 else 36 + n % 14},"
        f"{185 + n % 45},male"
        for n in range(1, rows + 1)
    ]
    return (HEADER + "\n".join(lines) + "\n").encode()


def upload(client: TestClient, content: bytes, **fields: str) -> dict[str, Any]:
    response = client.post(
        "/api/v1/jobs/csv", files={"file": ("p.csv", content, "text/csv")}, data={"model": "penguins", **fields}
    )
    assert response.status_code == 202, response.text
    return dict(response.json())


def page(client: TestClient, job: dict[str, Any], **params: Any) -> Any:
    response = client.get(f"/jobs/{job['id']}", params=params)
    assert response.status_code == 200, response.text
    return parse(response.text)


def bad_rows(html: Any) -> list[tuple[str, str]]:
    return [(tr.td.text, tr.select("td")[1].text) for tr in html.select("table.bad-rows tbody tr")]


def test_a_scored_job_shows_its_first_rows_their_spread_and_every_bad_row(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry
) -> None:
    job = upload(client, penguins(30, bad_every=7))
    enqueue.deliver(registry)
    html = page(client, job)

    preview = html.select("table.csv-preview tbody tr")
    assert len(preview) == csv_results.PREVIEW_ROWS
    header = [th.text for th in html.select("table.csv-preview thead th")]
    assert header[:5] == ["Row", "island", "bill_length_mm", "flipper_length_mm", "sex"]
    assert "prediction" in header and "error" in header
    first = [td.text for td in preview[0].select("td")]
    assert first[1:3] == ["Biscoe", "37"] and first[header.index("prediction")] in {"Adelie", "Chinstrap", "Gentoo"}
    assert "not a number" in [td.text for td in preview[6].select("td")][header.index("error")]

    chart = one(html, "#results figure.chart")
    assert one(chart, "svg > title").text == "Predicted classes"
    counts = {one(tr, "th").text: int(one(tr, "td").text) for tr in chart.select("table tbody tr")}
    assert set(counts) == {"Adelie", "Chinstrap", "Gentoo"} and sum(counts.values()) == 30 - 4

    assert [number for number, _ in bad_rows(html)] == ["7", "14", "21", "28"]
    assert all("'abc'" in reason for _, reason in bad_rows(html))
    api = client.get(job["url"]).json()
    assert api["rows_failed"] == 4 and api["rows_done"] == 30
    assert "4 rows had bad values and were skipped" in " ".join(one(html, "article.status-card").text.split())
    assert not html.select("#results nav.pager"), "one page holds them all"


def test_bad_rows_come_a_page_at_a_time_reading_only_the_chunks_that_hold_them(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_results, "BAD_ROWS_PER_PAGE", 3)
    job = upload(client, penguins(40, bad_every=2))  # 20 bad rows, in chunks of 3 rows
    enqueue.deliver(registry)
    read: list[bytes] = []
    real = ScoredTable.from_bytes

    def counted(raw: bytes) -> ScoredTable:
        read.append(raw)
        return real(raw)

    monkeypatch.setattr(ScoredTable, "from_bytes", counted)

    second = page(client, job, bad_page=2)

    assert [number for number, _ in bad_rows(second)] == ["8", "10", "12"]
    preview_chunks = -(-csv_results.PREVIEW_ROWS // 3)
    assert len(read) == preview_chunks + 2, "the first rows' chunks, and the two chunks page 2 lists: no others"
    links = {a["rel"][0]: a["href"] for a in second.select("nav.pager a")}
    assert links["prev"].endswith("bad_page=1#bad-rows") and links["next"].endswith("bad_page=3#bad-rows")
    last = page(client, job, bad_page=99)  # an old link past the end: the last page
    assert [number for number, _ in bad_rows(last)] == ["38", "40"]
    assert "page 7 of 7" in one(last, "#results").text


def test_a_job_failed_on_a_bad_row_lists_it_and_says_what_was_not_scored(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry
) -> None:
    job = upload(client, penguins(12, bad_every=5), on_error="fail")
    enqueue.deliver(registry)
    html = page(client, job)

    api = client.get(job["url"]).json()
    assert api["status"] == "failed"
    assert api["rows_failed"] == 1, "the bad row of the chunk that failed the job"
    assert [number for number, _ in bad_rows(html)] == ["5"]
    assert f"{12 - api['rows_done']} rows were not scored: the job was failed" in " ".join(html.text.split())
    assert len(html.select("table.csv-preview tbody tr")) == 6, "the chunks scored: the one that failed it too"


def test_a_cancelled_job_shows_what_was_scored_before(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry
) -> None:
    job = upload(client, penguins(9, bad_every=2))
    enqueue.dispatches = enqueue.dispatches[:1]
    enqueue.deliver(registry)  # the first chunk only: the job is running
    running = page(client, job, bad_page=1)
    assert "Results so far" in one(running, "#results h2").text
    assert "bad_page=1" in one(running, "#job-live")["hx-get"], "polling keeps the page of bad rows"
    polled = parse(client.get(f"/jobs/{job['id']}", params={"bad_page": 1}, headers={"HX-Request": "true"}).text)
    assert one(polled, "#job-live #results table.bad-rows") and not polled.select("html, h1"), "the live block alone"
    assert client.post(f"/api/v1/jobs/{job['id']}/cancel").status_code == 200
    html = page(client, job)

    assert one(html, "#results h2").text == "Results"
    assert [number for number, _ in bad_rows(html)] == ["2"]
    assert "6 rows were not scored: the job was cancelled" in " ".join(html.text.split())
    assert not one(html, "#job-live").get("hx-get")


def test_chunks_stored_at_once_each_count_their_predictions(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry, engine: Engine
) -> None:
    job = upload(client, penguins(30, bad_every=4))
    context = worker_context(registry, enqueue)
    for _ in range(5):  # each round stores the chunks released so far from parallel threads, as workers do
        chunks, enqueue.dispatches = [d.targets[0] for d in enqueue.dispatches], []
        with ThreadPoolExecutor(len(chunks) or 1) as pool:
            list(pool.map(lambda chunk: score_chunk(context, chunk), chunks))

    with Session(engine) as session:
        stored = session.scalars(select(Job).where(Job.id == uuid.UUID(job["id"]))).one()
    assert (stored.status, stored.rows_done, stored.rows_failed) == ("succeeded", 30, 7)
    assert sum(stored.upload["tally"]["prediction"].values()) == 30 - 7  # type: ignore[index]


def test_a_rerun_of_the_file_counts_its_own_predictions(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry, engine: Engine, member: Account
) -> None:
    job = upload(client, penguins(6))
    enqueue.deliver(registry)
    csv_jobs = client.app.state.csv_jobs  # type: ignore[attr-defined]
    with Session(engine) as session:
        old = session.scalars(select(Job).where(Job.id == uuid.UUID(job["id"]))).one()
    assert sum(old.upload["tally"]["prediction"].values()) == 6  # type: ignore[index]

    new = csv_jobs.rerun(old, old.model_version, member.principal)

    assert "tally" not in new.upload
    enqueue.deliver(registry)
    with Session(engine) as session:
        again = session.scalars(select(Job).where(Job.id == new.id)).one()
    assert again.upload["tally"] == old.upload["tally"]  # type: ignore[index]


def test_tallies_add_up_and_a_regressor_gets_a_histogram() -> None:
    scored = ScoredTable(errors=[None, None, "bad", None], values=np.array([1.234, 1.2, 99.0, 250.0]))
    counts = tally(scored, [Output("value")])
    assert counts == {"value": {"1.2": 2, "2.5e+02": 1}}
    assert merged(counts, counts, [Output("value")]) == {"value": {"1.2": 4, "2.5e+02": 2}}
    wide = {"value": {f"{m / 10:.2g}e{e}": 1 for m in range(10, 100) for e in range(-10, 0)}}  # 10 decades
    coarse = merged(None, wide, [Output("value")])["value"]
    assert len(coarse) < csv_results.MAX_VALUE_KEYS < 900 and sum(coarse.values()) == 900
    spread = {str(v): 1 for v in range(100)}
    histogram = _distribution(Output("value"), spread)
    assert len(histogram.labels) == csv_results.HISTOGRAM_BARS and sum(histogram.counts) == 100
    assert histogram.labels[0] == "0" and histogram.approximate
    classes = _distribution(Output("prediction", ["a", "b"]), {"b": 3})
    assert (classes.labels, classes.counts) == (["a", "b"], [0, 3])
