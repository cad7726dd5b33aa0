"""Webhooks: when a job with a callback_url ends, a signed POST of the job is due, and a worker delivers it.

Every place that ends a job (scoring, chunk scoring, cancelling, the reconciler) announces it through the one
Announcer it was given; `WebhookAnnouncer` wraps that announcer, so none of those places knows about webhooks. In
the transaction that ends the job it marks the webhook due (`jobs.webhook_due_at`), and after the commit it
publishes the delivery task. If that publish is lost (the broker is down, or the process dies between the commit
and the publish), the due time stays in the row and the reconciler publishes it later (services/reconciler.py).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session, sessionmaker

from webapp.config import Settings
from webapp.http.security import server_secret
from webapp.models import Job, JobStatus, WebhookDelivery, utcnow
from webapp.services.dispatch import DELIVER_WEBHOOK, Dispatch, Enqueue
from webapp.services.events import NO_ENDS, Announcer, JobEnd, choose_announcer

log = logging.getLogger(__name__)

ENDED = [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED]
SIGNATURE_HEADER = "Apot-Signature"
# Receivers should refuse a signature older than this (README, "Webhooks"): a captured request replayed later fails.
SIGNATURE_TOLERANCE_SECONDS = 300


@dataclass(frozen=True)
class WebhookSettings:
    secret: bytes
    pauses: tuple[float, ...]  # before the 2nd, 3rd... attempt
    timeout_seconds: float
    allow_private: bool
    base_url: str  # for the job's links in the payload

    @property
    def max_attempts(self) -> int:
        return len(self.pauses) + 1

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookSettings:
        return cls(
            secret=webhook_secret(settings),
            pauses=settings.webhook_pauses,
            timeout_seconds=settings.webhook_timeout_seconds,
            allow_private=settings.webhook_allow_private,
            base_url=settings.base_url,
        )


def webhook_secret(settings: Settings) -> bytes:
    """APOT_WEBHOOK_SECRET, or a key derived from the server secret (never the server secret itself: receivers
    hold this one, and it must not sign CSRF tokens)."""
    if settings.webhook_secret is not None:
        return settings.webhook_secret.get_secret_value().encode()
    return hmac.new(server_secret(settings), b"apot webhook signing key", hashlib.sha256).hexdigest().encode()


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The Apot-Signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def delivery_dispatch(job_id: uuid.UUID, countdown: float = 0.0) -> Dispatch:
    return Dispatch(DELIVER_WEBHOOK, (str(job_id),), str(uuid.uuid4()), countdown)


class WebhookAnnouncer:
    """An Announcer that also makes the webhooks of the announced jobs due, and publishes them after the commit."""

    def __init__(self, inner: Announcer, enqueue: Enqueue) -> None:
        self.inner = inner
        self.enqueue = enqueue

    def announce(
        self, session: Session, job_ids: Iterable[uuid.UUID], ends: Mapping[uuid.UUID, JobEnd] = NO_ENDS
    ) -> None:
        ids = list(job_ids)
        self.inner.announce(session, ids, ends)
        if not ids:
            return
        # Most jobs have no callback: one lookup by primary key finds that out, and nothing is written. (The guards
        # below in the same statement let SQLite pick the status or due-time index and scan every ended job.)
        with_callback = session.scalars(select(Job.id).where(Job.id.in_(ids), Job.callback_url.is_not(None))).all()
        if not with_callback:
            return
        # Only jobs that did end in this transaction (a worker announces outcomes it may not have written), and
        # only once per job.
        due = session.scalars(
            update(Job)
            .where(
                Job.id.in_(with_callback),
                Job.status.in_(ENDED),
                Job.webhook_attempts == 0,
                Job.webhook_due_at.is_(None),
            )
            .values(webhook_due_at=utcnow())
            .returning(Job.id)
        ).all()
        if due:
            event.listen(session, "after_commit", lambda _session: self._publish(due), once=True)

    def _publish(self, job_ids: Sequence[uuid.UUID]) -> None:
        try:
            self.enqueue([delivery_dispatch(job_id) for job_id in job_ids])
        except Exception:
            # The jobs have ended all the same; their webhooks stay due and the reconciler publishes them.
            log.warning("could not publish %d webhook deliveries; the reconciler will", len(job_ids), exc_info=True)


def job_end_announcer(settings: Settings, enqueue: Enqueue) -> Announcer:
    """What every process that ends jobs announces them with: wake-ups for waiting requests, and webhooks."""
    return WebhookAnnouncer(choose_announcer(settings.database_url, settings.broker_url, settings.queue), enqueue)


def delivery_attempts(sessions: sessionmaker[Session], job_id: uuid.UUID) -> list[WebhookDelivery]:
    """A job's webhook attempts, first first."""
    with sessions() as session:
        query = select(WebhookDelivery).where(WebhookDelivery.job_id == job_id).order_by(WebhookDelivery.attempt)
        return list(session.scalars(query))
