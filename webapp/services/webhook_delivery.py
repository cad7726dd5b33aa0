"""Worker side of webhooks: claim a due delivery, POST the signed job, record the attempt, schedule the next.

A delivery is claimed like a job: the attempt counter goes up and the due time moves past the attempt's longest
possible run, in one statement that only a due row matches. So a task delivered twice, or published again by the
reconciler, makes one attempt, and a worker that dies mid-attempt leaves the row to come due again. Whatever the
receiver does, only the webhook_* columns and webhook_deliveries are written: the job's status is never touched.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import httpx2
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from webapp.db import transaction
from webapp.models import Job, JobStatus, WebhookDelivery, utcnow
from webapp.schemas import LinkFor, job_out
from webapp.services.callback_urls import CallbackRefused, Target, check_callback_url
from webapp.services.dispatch import Enqueue
from webapp.services.webhooks import SIGNATURE_HEADER, WebhookSettings, delivery_dispatch, signature

log = logging.getLogger(__name__)

# A retry message may reach a worker whose clock runs a little behind the one that scheduled it.
CLOCK_SLACK_SECONDS = 2.0
# Past an attempt's timeout, before its row is due again (the worker running it is presumed dead).
ATTEMPT_MARGIN_SECONDS = 30.0
MAX_ERROR_LENGTH = 500
USER_AGENT = "apot-webhooks/1"


@dataclass(frozen=True)
class WebhookContext:
    sessions: sessionmaker[Session]
    enqueue: Enqueue
    settings: WebhookSettings
    links: LinkFor


def deliver_webhook(ctx: WebhookContext, job_id: uuid.UUID) -> None:
    """Make the job's due webhook attempt; a message for a webhook not due (done, or claimed) does nothing."""
    claimed = _claim(ctx, job_id)
    if claimed is None:
        log.info("webhook of job %s is not due; message ignored", job_id)
        return
    job, attempt = claimed
    url = job.callback_url or ""
    body = job_out(job, ctx.links).model_dump_json().encode()
    attempted_at, started = utcnow(), time.perf_counter()
    status_code, error = _post(ctx.settings, job, url, body, attempt)
    duration_ms = (time.perf_counter() - started) * 1000
    delivered = status_code is not None and 200 <= status_code < 300
    pause = None if delivered or attempt >= ctx.settings.max_attempts else ctx.settings.pauses[attempt - 1]
    with transaction(ctx.sessions) as session:
        session.execute(
            insert(WebhookDelivery).values(
                id=uuid.uuid4(),
                job_id=job_id,
                attempt=attempt,
                url=url,
                attempted_at=attempted_at,
                status_code=status_code,
                error=error[:MAX_ERROR_LENGTH] if error else None,
                duration_ms=duration_ms,
            )
        )
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.webhook_attempts == attempt)
            .values(webhook_due_at=None if pause is None else utcnow() + timedelta(seconds=pause))
        )
    if delivered:
        log.info("webhook of job %s delivered on attempt %d", job_id, attempt)
        return
    if pause is None:
        log.warning("webhook of job %s gave up after %d attempts: %s", job_id, attempt, error)
        return
    log.info("webhook of job %s attempt %d failed (%s); next in %g s", job_id, attempt, error, pause)
    try:
        ctx.enqueue([delivery_dispatch(job_id, pause)])
    except Exception:
        log.warning("could not publish the retry of job %s's webhook; the reconciler will", job_id, exc_info=True)


def _claim(ctx: WebhookContext, job_id: uuid.UUID) -> tuple[Job, int] | None:
    now = utcnow()
    lease = timedelta(seconds=ctx.settings.timeout_seconds + ATTEMPT_MARGIN_SECONDS)
    with transaction(ctx.sessions) as session:
        attempt = session.scalars(
            update(Job)
            .where(
                Job.id == job_id,
                Job.webhook_due_at <= now + timedelta(seconds=CLOCK_SLACK_SECONDS),
                Job.webhook_attempts < ctx.settings.max_attempts,
                Job.callback_url.is_not(None),
            )
            .values(webhook_attempts=Job.webhook_attempts + 1, webhook_due_at=now + lease)
            .returning(Job.webhook_attempts)
        ).first()
        if attempt is None:
            return None
        job = session.scalars(select(Job).where(Job.id == job_id)).one()
    return job, attempt


def _post(settings: WebhookSettings, job: Job, url: str, body: bytes, attempt: int) -> tuple[int | None, str | None]:
    """The receiver's status code, or why there is none; never raises for what the receiver or network did."""
    try:
        # Checked again now: the name may resolve elsewhere than when the job was submitted.
        target = check_callback_url(url, allow_private=settings.allow_private)
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: signature(settings.secret, timestamp, body),
            # The same for every attempt at this job's webhook, so a receiver can drop repeats.
            "Apot-Delivery": str(uuid.uuid5(job.id, "webhook")),
            "Apot-Event": f"job.{JobStatus(job.status).value}",
            "Apot-Attempt": str(attempt),
        }
        status_code, reason = _send(target, headers, body, settings.timeout_seconds)
    except CallbackRefused as exc:
        return None, f"refused: {exc}"
    except httpx2.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    except Exception as exc:
        # Whatever else went wrong is recorded as this attempt's failure and retried like one; it must not leave
        # the webhook claimed and unrecorded.
        log.exception("webhook of job %s: attempt %d failed unexpectedly", job.id, attempt)
        return None, f"{type(exc).__name__}: {exc}"
    if 200 <= status_code < 300:
        return status_code, None
    return status_code, f"HTTP {status_code} {reason}".strip()


def _send(target: Target, headers: dict[str, str], body: bytes, timeout: float) -> tuple[int, str]:
    """POST to the checked address itself, naming the host in Host and TLS (SNI and certificate check), so the
    name is not resolved a second time; redirects are answers, not followed; no proxy from the environment. The
    answer's body is never read: a receiver cannot make a worker hold a large one.

    `timeout` bounds the whole attempt, connecting to the last header: a client's own timeouts are per read, and a
    receiver trickling a header line every few seconds held a worker for minutes."""
    return asyncio.run(_send_within(target, headers, body, timeout))


async def _send_within(target: Target, headers: dict[str, str], body: bytes, timeout: float) -> tuple[int, str]:
    host = f"[{target.address}]" if target.address.version == 6 else str(target.address)
    url = target.url._replace(netloc=f"{host}:{target.port}").geturl()
    try:
        async with (
            asyncio.timeout(timeout),
            httpx2.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client,
            client.stream(
                "POST",
                url,
                content=body,
                headers={**headers, "Host": target.url.netloc},
                extensions={"sni_hostname": target.url.hostname or ""},
            ) as response,
        ):
            return response.status_code, response.reason_phrase
    except TimeoutError as exc:
        raise httpx2.TimeoutException(f"no answer within {timeout:g} s") from exc
