"""Wake-ups when jobs end, so a client holding `?wait` or `Prefer: wait` is answered at once, not by polling.

Whoever ends a job (a worker, or the web cancelling one) announces its id; each web process listens and wakes
the requests waiting on it. Postgres carries the announcement with NOTIFY (sent by the same commit that ends the
job); without Postgres, Redis pub/sub (the embedded broker is a Redis too); with neither, waiters poll the row.
A lost announcement costs latency, never an answer: waiters look at the row again every few seconds regardless.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

import psycopg
import redis
import redis.asyncio
from sqlalchemy import event, func, make_url, select
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

CHANNEL = "apot_job_ended"
# NOTIFY payloads must stay under 8000 bytes: 200 ids of 36 characters and their commas fit.
IDS_PER_PAYLOAD = 200
RECONNECT_SECONDS = 1.0


class Announcer(Protocol):
    def announce(self, session: Session, job_ids: Iterable[uuid.UUID]) -> None:
        """Say these jobs ended, once `session`'s transaction commits (and never if it rolls back)."""


class PostgresAnnouncer:
    def announce(self, session: Session, job_ids: Iterable[uuid.UUID]) -> None:
        # NOTIFY inside the transaction is delivered by its commit: a waiter woken by it always reads the end.
        for payload in _payloads(job_ids):
            session.execute(select(func.pg_notify(CHANNEL, payload)))


class RedisAnnouncer:
    def __init__(self, url: str, channel: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.channel = channel

    def announce(self, session: Session, job_ids: Iterable[uuid.UUID]) -> None:
        payloads = list(_payloads(job_ids))

        def publish(_session: Session) -> None:
            try:
                for payload in payloads:
                    self.client.publish(self.channel, payload)
            except redis.RedisError:
                # The jobs have ended all the same; waiters find out when they next look at the row.
                log.warning("could not announce ended jobs on Redis", exc_info=True)

        if payloads:
            event.listen(session, "after_commit", publish, once=True)


class SilentAnnouncer:
    def announce(self, session: Session, job_ids: Iterable[uuid.UUID]) -> None:
        """No channel to announce on: waiters poll."""


class Wakeups:
    """The web side: requests watch a job id; a listener task wakes them when the id is announced."""

    # Without a listener, the row is read this often; the first looks come quickly because most jobs take ms.
    POLL_SECONDS: Sequence[float] = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.25)
    # With a listener, a safety net in case an announcement was lost (e.g. while the listener reconnected).
    LISTENING_RECHECK_SECONDS = 2.0

    def __init__(self) -> None:
        self._watchers: dict[uuid.UUID, set[asyncio.Event]] = {}
        self.listening = False

    @contextmanager
    def watch(self, job_id: uuid.UUID) -> Iterator[asyncio.Event]:
        """An event set when the job is announced; watch before reading the row, so no announcement is missed."""
        ended = asyncio.Event()
        self._watchers.setdefault(job_id, set()).add(ended)
        try:
            yield ended
        finally:
            watchers = self._watchers.get(job_id)
            if watchers is not None:
                watchers.discard(ended)
                if not watchers:
                    del self._watchers[job_id]

    def pauses(self) -> Iterator[float]:
        """How long to wait for a wake-up before reading the row again."""
        if self.listening:
            while True:
                yield self.LISTENING_RECHECK_SECONDS
        yield from self.POLL_SECONDS
        while True:
            yield self.POLL_SECONDS[-1]

    def wake(self, payload: str) -> None:
        for text in payload.split(","):
            try:
                job_id = uuid.UUID(text)
            except ValueError:
                continue
            for ended in self._watchers.get(job_id, ()):
                ended.set()

    def _connected(self) -> None:
        """The listener is (again) subscribed: announcements may have been missed meanwhile, so every waiter reads
        its row again."""
        self.listening = True
        self.wake_all()

    def wake_all(self) -> None:
        for watchers in self._watchers.values():
            for ended in watchers:
                ended.set()

    async def listen(self) -> None:
        """Run until cancelled (no listener: nothing to do; waiters poll)."""


class PostgresWakeups(Wakeups):
    def __init__(self, database_url: str) -> None:
        super().__init__()
        self.conninfo = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)

    async def listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True) as connection:
                    await connection.execute(f'LISTEN "{CHANNEL}"')
                    self._connected()
                    async for notification in connection.notifies():
                        self.wake(notification.payload)
            except (psycopg.Error, OSError):
                log.warning("lost the Postgres connection that listens for ended jobs; reconnecting", exc_info=True)
            finally:
                self.listening = False
            await asyncio.sleep(RECONNECT_SECONDS)


class RedisWakeups(Wakeups):
    def __init__(self, url: str, channel: str) -> None:
        super().__init__()
        self.url = url
        self.channel = channel

    async def listen(self) -> None:
        while True:
            client = redis.asyncio.Redis.from_url(self.url)
            try:
                async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self.channel)
                    self._connected()
                    async for message in pubsub.listen():
                        self.wake(message["data"].decode())
            except (redis.RedisError, OSError):
                log.warning("lost the Redis connection that listens for ended jobs; reconnecting", exc_info=True)
            finally:
                self.listening = False
                await client.aclose()
            await asyncio.sleep(RECONNECT_SECONDS)


def redis_channel(queue: str) -> str:
    # One channel per queue, so deployments that share a Redis do not wake each other's waiters.
    return f"apot:{queue}:ended"


def redis_url_of(broker_url: str) -> str | None:
    """The redis-py URL of a Celery Redis broker URL; None for other brokers."""
    if broker_url.startswith(("redis://", "rediss://")):
        return broker_url
    if broker_url.startswith("redis+socket://"):
        return "unix://" + broker_url.removeprefix("redis+socket://")
    return None


def choose_announcer(database_url: str, broker_url: str, queue: str) -> Announcer:
    if database_url.startswith("postgresql"):
        return PostgresAnnouncer()
    redis_url = redis_url_of(broker_url)
    return RedisAnnouncer(redis_url, redis_channel(queue)) if redis_url else SilentAnnouncer()


def choose_wakeups(database_url: str, broker_url: str, queue: str) -> Wakeups:
    if database_url.startswith("postgresql"):
        return PostgresWakeups(database_url)
    redis_url = redis_url_of(broker_url)
    return RedisWakeups(redis_url, redis_channel(queue)) if redis_url else Wakeups()


def _payloads(job_ids: Iterable[uuid.UUID]) -> Iterator[str]:
    ids = [str(job_id) for job_id in job_ids]
    for start in range(0, len(ids), IDS_PER_PAYLOAD):
        yield ",".join(ids[start : start + IDS_PER_PAYLOAD])
