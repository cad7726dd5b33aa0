"""Wake-ups when jobs end, so a client holding `?wait` or `Prefer: wait` is answered at once, not by polling.

Whoever ends a job (a worker, or the web cancelling one) announces its id; each web process listens and wakes
the requests waiting on it. Postgres carries the announcement with NOTIFY (sent by the same commit that ends the
job); without Postgres, Redis pub/sub (the embedded broker is a Redis too); with neither, waiters poll the row.
A lost announcement costs latency, never an answer: waiters look at the row again every few seconds regardless.

A worker announces with the id what its commit wrote (status, times, error, a small result): the woken request
answers from that and does not read the row again. Ends too large for one NOTIFY go as bare ids, and are read.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson
import psycopg
import redis
import redis.asyncio
from psycopg import sql
from sqlalchemy import event, func, make_url, select
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

CHANNEL = "apot_job_ended"
POSTGRES_CHANNEL_BYTES = 63  # longer names are cut by LISTEN and refused by pg_notify
# NOTIFY payloads must stay under 8000 bytes; an end is sent whole only if it leaves room for a few more.
PAYLOAD_BYTES = 7900
END_BYTES = 2000
RECONNECT_SECONDS = 1.0


@dataclass(frozen=True)
class JobEnd:
    """What the commit that ended a job wrote: all a waiting request needs to answer without reading the row."""

    status: str
    started_at: datetime | None
    finished_at: datetime
    rows_done: int
    error: str | None
    result: dict[str, Any] | None

    def apply(self, job: Any) -> Any:
        """The job (as read or stored before it ended) as it is now."""
        for name, value in vars(self).items():  # not asdict(), which would copy the result through and through
            setattr(job, name, value)
        return job


NO_ENDS: Mapping[uuid.UUID, JobEnd] = {}


class Announcer(Protocol):
    def announce(
        self, session: Session, job_ids: Iterable[uuid.UUID], ends: Mapping[uuid.UUID, JobEnd] = NO_ENDS
    ) -> None:
        """Say these jobs ended, once `session`'s transaction commits (and never if it rolls back); `ends` has what
        the transaction wrote for some of them."""


class PostgresAnnouncer:
    def __init__(self, channel: str) -> None:
        self.channel = channel

    def announce(
        self, session: Session, job_ids: Iterable[uuid.UUID], ends: Mapping[uuid.UUID, JobEnd] = NO_ENDS
    ) -> None:
        # NOTIFY inside the transaction is delivered by its commit: a waiter woken by it always reads the end.
        for payload in payloads(job_ids, ends):
            session.execute(select(func.pg_notify(self.channel, payload)))


class RedisAnnouncer:
    def __init__(self, url: str, channel: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.channel = channel

    def announce(
        self, session: Session, job_ids: Iterable[uuid.UUID], ends: Mapping[uuid.UUID, JobEnd] = NO_ENDS
    ) -> None:
        messages = list(payloads(job_ids, ends))

        def publish(_session: Session) -> None:
            try:
                for payload in messages:
                    self.client.publish(self.channel, payload)
            except redis.RedisError:
                # The jobs have ended all the same; waiters find out when they next look at the row.
                log.warning("could not announce ended jobs on Redis", exc_info=True)

        if messages:
            event.listen(session, "after_commit", publish, once=True)


class SilentAnnouncer:
    def announce(
        self, session: Session, job_ids: Iterable[uuid.UUID], ends: Mapping[uuid.UUID, JobEnd] = NO_ENDS
    ) -> None:
        """No channel to announce on: waiters poll."""


class Ending(asyncio.Event):
    """Set when a watched job is announced; `end` is what its commit wrote, when the announcement carried it."""

    end: JobEnd | None = None


class Wakeups:
    """The web side: requests watch a job id; a listener task wakes them when the id is announced."""

    # Without a listener, the row is read this often; the first looks come quickly because most jobs take ms.
    POLL_SECONDS: Sequence[float] = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.25)
    # With a listener, a safety net in case an announcement was lost (e.g. while the listener reconnected).
    LISTENING_RECHECK_SECONDS = 2.0

    def __init__(self) -> None:
        self._watchers: dict[uuid.UUID, set[Ending]] = {}
        self.listening = False

    @contextmanager
    def watch(self, job_id: uuid.UUID) -> Iterator[Ending]:
        """An event set when the job is announced; watch before reading the row, so no announcement is missed."""
        ended = Ending()
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
        try:
            # Ids alone, comma-separated, from a process of an earlier version (during an upgrade).
            items = orjson.loads(payload) if payload.startswith("[") else payload.split(",")
        except orjson.JSONDecodeError:
            log.warning("an announcement of ended jobs could not be read; waiters will read their rows")
            self.wake_all()
            return
        for item in items:
            try:
                job_id, end = _parse(item)
            except (KeyError, TypeError, ValueError):
                continue
            for ended in self._watchers.get(job_id, ()):
                ended.end = end
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
    def __init__(self, database_url: str, channel: str) -> None:
        super().__init__()
        self.channel = channel
        self.conninfo = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)

    async def listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True) as connection:
                    await connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
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


def postgres_channel(queue: str) -> str:
    """One channel per queue, as on Redis: deployments sharing a database (in other schemas, or the bench's stacks
    side by side) do not wake each other's waiters, nor parse each other's announcements."""
    channel = f"{CHANNEL}:{queue}"
    too_long = len(channel.encode()) > POSTGRES_CHANNEL_BYTES
    return f"{CHANNEL}:{hashlib.sha256(queue.encode()).hexdigest()[:40]}" if too_long else channel


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
        return PostgresAnnouncer(postgres_channel(queue))
    redis_url = redis_url_of(broker_url)
    return RedisAnnouncer(redis_url, redis_channel(queue)) if redis_url else SilentAnnouncer()


def choose_wakeups(database_url: str, broker_url: str, queue: str) -> Wakeups:
    if database_url.startswith("postgresql"):
        return PostgresWakeups(database_url, postgres_channel(queue))
    redis_url = redis_url_of(broker_url)
    return RedisWakeups(redis_url, redis_channel(queue)) if redis_url else Wakeups()


def payloads(job_ids: Iterable[uuid.UUID], ends: Mapping[uuid.UUID, JobEnd]) -> Iterator[str]:
    """JSON arrays under PAYLOAD_BYTES: each job as {"id": ..., its end} when that is small enough, else its id."""
    items: list[bytes] = []
    size = 2
    for job_id in job_ids:
        end = ends.get(job_id)
        item = orjson.dumps({"id": job_id, **vars(end)} if end is not None else job_id)
        if len(item) > END_BYTES:
            item = orjson.dumps(job_id)
        if items and size + len(item) + 1 > PAYLOAD_BYTES:
            yield _array(items)
            items, size = [], 2
        items.append(item)
        size += len(item) + 1
    if items:
        yield _array(items)


def _array(items: list[bytes]) -> str:
    return (b"[" + b",".join(items) + b"]").decode()


def _parse(item: object) -> tuple[uuid.UUID, JobEnd | None]:
    if isinstance(item, str):
        return uuid.UUID(item), None
    if not isinstance(item, dict):
        raise TypeError(item)
    started = item["started_at"]
    return uuid.UUID(item["id"]), JobEnd(
        status=item["status"],
        started_at=datetime.fromisoformat(started) if started else None,
        finished_at=datetime.fromisoformat(item["finished_at"]),
        rows_done=item["rows_done"],
        error=item["error"],
        result=item["result"],
    )
