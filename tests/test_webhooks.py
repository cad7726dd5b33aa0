"""Webhooks delivered to a real HTTP receiver on 127.0.0.1: signed, retried, recorded and shown on the job page.

The worker's services run in this process on the test's database (tests/e2e/test_webhooks.py runs the real worker).
"""

from __future__ import annotations

import json
import socketserver
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.conftest import RecordingEnqueue
from tests.html import one, parse
from tests.receiver import Receiver, readme_verify, running_receiver
from webapp.api import api_links
from webapp.background.reconciler import Reconciler, ReconcilerSettings
from webapp.config import Settings
from webapp.db import transaction
from webapp.models import Job, WebhookDelivery, utcnow
from webapp.services.chunk_scoring import score_chunk
from webapp.services.dispatch import DELIVER_WEBHOOK, SCORE_CHUNK
from webapp.services.events import SilentAnnouncer
from webapp.services.models import ModelRegistry
from webapp.services.scoring import ScoringContext, score_jobs
from webapp.services.webhook_delivery import WebhookContext, deliver_webhook
from webapp.services.webhooks import WebhookAnnouncer, WebhookSettings, signature, webhook_secret

GENTOO = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Receivers on loopback allowed, five attempts with no pause between them."""
    return settings.model_copy(
        update={"webhook_allow_private": True, "webhook_retry_seconds": "0,0,0,0", "public_url": "http://testserver"}
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as receiver:
        yield receiver


@pytest.fixture
def webhooks(settings: Settings, enqueue: RecordingEnqueue, registry: ModelRegistry) -> WebhookContext:
    return WebhookContext(
        registry.sessions, enqueue, WebhookSettings.from_settings(settings), api_links("http://testserver")
    )


def run_tasks(enqueue: RecordingEnqueue, registry: ModelRegistry, webhooks: WebhookContext) -> None:
    """Play the worker until nothing is left to do: score, then deliver webhooks and their retries."""
    scoring = scoring_context(enqueue, registry)
    while enqueue.dispatches:
        dispatch = enqueue.dispatches.pop(0)
        if dispatch.task == DELIVER_WEBHOOK:
            deliver_webhook(webhooks, uuid.UUID(dispatch.targets[0]))
        elif dispatch.task == SCORE_CHUNK:
            score_chunk(scoring, *dispatch.targets)
        else:
            score_jobs(scoring, dispatch.targets)


def scoring_context(enqueue: RecordingEnqueue, registry: ModelRegistry) -> ScoringContext:
    """A worker's, whose job endings publish webhooks through `enqueue`, as tasks/context.py makes them."""
    return ScoringContext(
        registry.sessions,
        registry,
        WebhookAnnouncer(SilentAnnouncer(), enqueue),
        "test-worker",
        lease_seconds=60,
        enqueue=enqueue,
    )


def score_without_publishing(enqueue: RecordingEnqueue, registry: ModelRegistry) -> None:
    """Run the one scoring task published, then lose what it published (its webhook): a process that died."""
    (scoring,) = enqueue.dispatches
    enqueue.dispatches.clear()
    score_jobs(scoring_context(enqueue, registry), scoring.targets)
    enqueue.dispatches.clear()


def submit(client: TestClient, callback_url: str | None) -> dict[str, Any]:
    body = {"model": "penguins", "inputs": GENTOO, **({"callback_url": callback_url} if callback_url else {})}
    response = client.post("/api/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    return dict(response.json())


def attempts(registry: ModelRegistry, job_id: str) -> list[WebhookDelivery]:
    with registry.sessions() as session:
        query = select(WebhookDelivery).where(WebhookDelivery.job_id == uuid.UUID(job_id))
        return list(session.scalars(query.order_by(WebhookDelivery.attempt)))


def test_the_ended_job_is_posted_signed_as_the_readme_says(
    client: TestClient,
    enqueue: RecordingEnqueue,
    registry: ModelRegistry,
    webhooks: WebhookContext,
    receiver: Receiver,
    settings: Settings,
) -> None:
    job = submit(client, f"{receiver.url}/hooks/apot?source=test")

    run_tasks(enqueue, registry, webhooks)

    (request,) = receiver.requests
    assert request.path == "/hooks/apot?source=test"
    verify = readme_verify()
    assert verify(webhook_secret(settings).decode(), request.headers["Apot-Signature"], request.body)
    assert not verify("another secret", request.headers["Apot-Signature"], request.body)
    assert not verify(webhook_secret(settings).decode(), request.headers["Apot-Signature"], request.body + b" ")
    assert request.headers["Apot-Event"] == "job.succeeded"
    assert uuid.UUID(request.headers["Apot-Delivery"])
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == client.get(job["url"]).json(), "the same JSON as GET /api/v1/jobs/{id}"


def test_the_readme_recipe_refuses_an_old_signature() -> None:
    verify, body = readme_verify(), b'{"id": "x"}'
    now = int(time.time())

    assert verify("key", signature(b"key", now - 60, body), body)
    assert not verify("key", signature(b"key", now - 301, body), body), "replayed after the 300 s tolerance"


def test_a_failing_receiver_is_retried_and_every_attempt_is_on_the_job_page(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry, webhooks: WebhookContext, receiver: Receiver
) -> None:
    receiver.answers = [500, 500, 200]
    job = submit(client, receiver.url)

    run_tasks(enqueue, registry, webhooks)

    assert len(receiver.requests) == 3
    assert [r.headers["Apot-Attempt"] for r in receiver.requests] == ["1", "2", "3"]
    assert len({r.headers["Apot-Delivery"] for r in receiver.requests}) == 1, "one delivery id for all its attempts"
    assert [(a.attempt, a.status_code) for a in attempts(registry, job["id"])] == [(1, 500), (2, 500), (3, 200)]
    page = parse(client.get(f"/jobs/{job['id']}").text)
    rows = one(page, "table.webhook-deliveries").select("tbody tr")
    cells = [[td.get_text(strip=True) for td in row.select("td")] for row in rows]
    assert [(c[0], c[2]) for c in cells] == [
        ("1", "HTTP 500 Internal Server Error"),
        ("2", "HTTP 500 Internal Server Error"),
        ("3", "200"),
    ]
    assert client.get(job["url"]).json()["status"] == "succeeded"


def test_a_receiver_that_is_down_is_given_up_on_and_the_job_keeps_its_status(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry, webhooks: WebhookContext
) -> None:
    with running_receiver() as gone:
        url = gone.url  # the port is closed once the receiver has stopped
    job = submit(client, url)

    run_tasks(enqueue, registry, webhooks)

    tried = attempts(registry, job["id"])
    assert [a.attempt for a in tried] == [1, 2, 3, 4, 5]
    assert all(a.status_code is None and a.error and "ConnectError" in a.error for a in tried)
    assert client.get(job["url"]).json()["status"] == "succeeded"
    with registry.sessions() as session:
        assert session.scalars(select(Job.webhook_due_at).where(Job.id == uuid.UUID(job["id"]))).one() is None


def test_a_redirect_is_an_answer_not_followed(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry, webhooks: WebhookContext, receiver: Receiver
) -> None:
    receiver.answers = [302, 200]
    job = submit(client, receiver.url)

    run_tasks(enqueue, registry, webhooks)

    assert [r.path for r in receiver.requests] == ["/", "/"], "never /elsewhere"
    assert [a.status_code for a in attempts(registry, job["id"])] == [302, 200]


def test_a_job_without_callback_url_sends_nothing(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry, webhooks: WebhookContext, receiver: Receiver
) -> None:
    job = submit(client, None)
    run_tasks(enqueue, registry, webhooks)

    assert client.get(job["url"]).json()["status"] == "succeeded"
    assert receiver.requests == []
    assert attempts(registry, job["id"]) == []
    assert one(parse(client.get(f"/jobs/{job['id']}").text), "main").select("#webhook") == []


def test_cancelling_a_job_sends_its_webhook(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry, webhooks: WebhookContext, receiver: Receiver
) -> None:
    job = submit(client, receiver.url)
    enqueue.dispatches.clear()  # its scoring task never runs

    assert client.post(f"{job['url']}/cancel").status_code == 200
    run_tasks(enqueue, registry, webhooks)

    (request,) = receiver.requests
    assert request.headers["Apot-Event"] == "job.cancelled"
    assert json.loads(request.body)["status"] == "cancelled"


def test_a_csv_job_sends_its_webhook_once_its_last_chunk_is_scored(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry, webhooks: WebhookContext, receiver: Receiver
) -> None:
    rows = "".join(f"Biscoe,{40 + i},{200 + i}\n" for i in range(7))  # three chunks of at most three rows
    response = client.post(
        "/api/v1/jobs/csv",
        files={"file": ("p.csv", f"island,bill_length_mm,flipper_length_mm\n{rows}".encode(), "text/csv")},
        data={"model": "penguins", "callback_url": receiver.url},
    )
    assert response.status_code == 202, response.text

    run_tasks(enqueue, registry, webhooks)

    (request,) = receiver.requests
    payload = json.loads(request.body)
    assert (payload["status"], payload["rows_done"], payload["kind"]) == ("succeeded", 7, "csv")
    assert payload["results_url"].endswith("/results.csv")


def test_a_delivery_published_twice_makes_one_attempt(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry, webhooks: WebhookContext, receiver: Receiver
) -> None:
    job = submit(client, receiver.url)
    run_tasks(enqueue, registry, webhooks)
    assert len(receiver.requests) == 1

    deliver_webhook(webhooks, uuid.UUID(job["id"]))  # a redelivered message, after the webhook was delivered

    assert len(receiver.requests) == 1
    assert len(attempts(registry, job["id"])) == 1


def test_the_reconciler_publishes_a_webhook_whose_publish_was_lost(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry, webhooks: WebhookContext, receiver: Receiver
) -> None:
    job = submit(client, receiver.url)
    score_without_publishing(enqueue, registry)  # the process died between the commit and the publish
    reconciler = Reconciler(registry.sessions, enqueue, SilentAnnouncer(), ReconcilerSettings(3, 120, 256))

    assert reconciler.run_once().webhooks == 0, "not overdue yet: the worker's own publish may still be on its way"
    with transaction(registry.sessions) as session:  # two minutes later
        due = utcnow() - timedelta(seconds=121)
        session.execute(update(Job).where(Job.id == uuid.UUID(job["id"])).values(webhook_due_at=due))
    report = reconciler.run_once()
    run_tasks(enqueue, registry, webhooks)

    assert report.webhooks == 1
    assert len(receiver.requests) == 1


def test_the_address_is_checked_again_at_delivery(
    client: TestClient,
    enqueue: RecordingEnqueue,
    registry: ModelRegistry,
    webhooks: WebhookContext,
    receiver: Receiver,
    settings: Settings,
) -> None:
    """A host that resolved to a public address when the job was submitted and to an inside one now."""
    job = submit(client, receiver.url)
    strict = WebhookContext(
        webhooks.sessions,
        enqueue,
        WebhookSettings.from_settings(settings.model_copy(update={"webhook_allow_private": False})),
        webhooks.links,
    )
    score_without_publishing(enqueue, registry)
    with transaction(registry.sessions) as session:  # one attempt only
        session.execute(update(Job).where(Job.id == uuid.UUID(job["id"])).values(webhook_attempts=4))

    deliver_webhook(strict, uuid.UUID(job["id"]))

    assert receiver.requests == []
    (attempt,) = attempts(registry, job["id"])
    assert attempt.status_code is None
    assert attempt.error and attempt.error.startswith("refused:") and "not a public address" in attempt.error


@pytest.fixture
def trickler() -> Iterator[str]:
    """A receiver that answers 200 and then one header line every 0.2 s for 8 s: each read comes in time, the whole
    answer does not."""

    class Trickle(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.recv(65536)
            try:
                self.request.sendall(b"HTTP/1.1 200 OK\r\n")
                for index in range(40):
                    time.sleep(0.2)
                    self.request.sendall(f"X-Line-{index}: x\r\n".encode())
                self.request.sendall(b"Content-Length: 0\r\n\r\n")
            except OSError:  # the worker gave up and closed: what this test wants
                pass

    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Trickle) as server:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
        server.shutdown()


def test_an_attempt_has_a_deadline_for_the_whole_answer_not_per_read(
    client: TestClient,
    enqueue: RecordingEnqueue,
    registry: ModelRegistry,
    webhooks: WebhookContext,
    trickler: str,
) -> None:
    webhooks = replace(webhooks, settings=replace(webhooks.settings, timeout_seconds=1.0, pauses=()))
    job = submit(client, trickler)

    run_tasks(enqueue, registry, webhooks)

    (attempt,) = attempts(registry, job["id"])
    assert attempt.status_code is None
    assert attempt.error == "TimeoutException: no answer within 1 s"
