"""Wake-ups: an announced job end reaches the request waiting on it through Postgres NOTIFY or Redis pub/sub."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from tests.loops import run
from tests.services import POSTGRES, REDIS, required_url
from webapp.services.events import (
    NO_ENDS,
    Announcer,
    JobEnd,
    PostgresAnnouncer,
    PostgresWakeups,
    RedisAnnouncer,
    RedisWakeups,
    Wakeups,
    postgres_channel,
    redis_channel,
    redis_url_of,
)
from webapp.services.reads import CoalescedReads

# Bounds for waits that end as soon as the awaited thing happens.
SETTLE_SECONDS = 10.0
# How long a wake-up that must not come is given to come anyway.
QUIET_SECONDS = 0.5

Announce = Callable[..., None]
"""(job ids, commit or roll back, and optionally what the transaction wrote)"""


@pytest.fixture(params=["postgres", "redis"])
def channel(request: pytest.FixtureRequest) -> Iterator[tuple[Wakeups, Announce]]:
    """A listener and a function that ends jobs in a transaction (committed, or rolled back) and announces them."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    if request.param == "postgres":
        url = required_url(POSTGRES)
        engine = create_engine(url)
        wakeups: Wakeups = PostgresWakeups(url, postgres_channel(queue))
        announcer: Announcer = PostgresAnnouncer(postgres_channel(queue))
    else:
        broker = required_url(REDIS)
        engine = create_engine("sqlite://")  # only for its transactions: Redis announces after a commit
        redis_url = redis_url_of(broker)
        assert redis_url is not None
        wakeups = RedisWakeups(redis_url, redis_channel(queue))
        announcer = RedisAnnouncer(redis_url, redis_channel(queue))

    def announce(job_ids: list[uuid.UUID], commit: bool, ends: Mapping[uuid.UUID, JobEnd] = NO_ENDS) -> None:
        with Session(engine) as session:
            session.begin()
            announcer.announce(session, job_ids, ends)
            session.commit() if commit else session.rollback()

    yield wakeups, announce
    engine.dispose()


async def listening(wakeups: Wakeups) -> asyncio.Task[None]:
    task = asyncio.create_task(wakeups.listen())
    async with asyncio.timeout(SETTLE_SECONDS):
        while not wakeups.listening:
            await asyncio.sleep(0.01)
    return task


def test_an_announced_end_wakes_the_requests_watching_that_job_and_no_other(
    channel: tuple[Wakeups, Announce],
) -> None:
    wakeups, announce = channel

    async def scenario() -> None:
        listener = await listening(wakeups)
        ended, other = uuid.uuid4(), uuid.uuid4()
        with wakeups.watch(ended) as first, wakeups.watch(ended) as second, wakeups.watch(other) as unrelated:
            await asyncio.to_thread(announce, [ended], True)
            async with asyncio.timeout(SETTLE_SECONDS):
                await first.wait()
                await second.wait()
            assert not unrelated.is_set()
        listener.cancel()

    run(scenario)


def test_an_end_rolled_back_is_never_announced(channel: tuple[Wakeups, Announce]) -> None:
    wakeups, announce = channel

    async def scenario() -> None:
        listener = await listening(wakeups)
        job_id = uuid.uuid4()
        with wakeups.watch(job_id) as ended:
            await asyncio.to_thread(announce, [job_id], False)
            await asyncio.sleep(QUIET_SECONDS)
            assert not ended.is_set()
        listener.cancel()

    run(scenario)


def test_many_ids_are_announced_in_payloads_that_fit(channel: tuple[Wakeups, Announce]) -> None:
    wakeups, announce = channel
    job_ids = [uuid.uuid4() for _ in range(450)]  # over NOTIFY's 8000-byte payload in one piece

    async def scenario() -> None:
        listener = await listening(wakeups)
        watches = [wakeups.watch(job_id) for job_id in job_ids]
        events = [watch.__enter__() for watch in watches]
        await asyncio.to_thread(announce, job_ids, True)
        async with asyncio.timeout(SETTLE_SECONDS):
            for event in events:
                await event.wait()
        for watch in watches:
            watch.__exit__(None, None, None)
        listener.cancel()

    run(scenario)


def test_without_a_listener_waiters_poll_and_with_one_they_only_recheck() -> None:
    wakeups = Wakeups()
    polling = wakeups.pauses()
    assert [next(polling) for _ in range(9)] == [*Wakeups.POLL_SECONDS, 0.25, 0.25]
    wakeups.listening = True
    assert next(wakeups.pauses()) == Wakeups.LISTENING_RECHECK_SECONDS


def test_redis_urls_for_each_broker_kind() -> None:
    assert redis_url_of("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert redis_url_of("redis+socket:///tmp/apot/broker.sock") == "unix:///tmp/apot/broker.sock"
    assert redis_url_of("amqp://guest:guest@127.0.0.1:5672//") is None


def test_reads_asked_for_together_share_one_query() -> None:
    queries: list[list[uuid.UUID]] = []
    known = {uuid.uuid4(): f"job {n}" for n in range(10)}

    def fetch(job_ids: Any) -> dict[uuid.UUID, Any]:
        queries.append(list(job_ids))
        return {job_id: known[job_id] for job_id in job_ids if job_id in known}

    async def scenario() -> list[Any]:
        reads = CoalescedReads(fetch)
        missing = uuid.uuid4()
        return await asyncio.gather(*(reads.get(job_id) for job_id in [*known, missing, next(iter(known))]))

    answers = run(scenario)

    assert answers == [*known.values(), None, "job 0"]
    assert len(queries) == 1 and len(queries[0]) == 11, "each id once, in one query"


def test_a_failed_read_fails_every_request_that_shared_it() -> None:
    def fetch(job_ids: Any) -> dict[uuid.UUID, Any]:
        raise ConnectionError("database restarting")

    async def scenario() -> list[Any]:
        reads = CoalescedReads(fetch)
        return await asyncio.gather(*(reads.get(uuid.uuid4()) for _ in range(3)), return_exceptions=True)

    assert [type(e) for e in run(scenario)] == [ConnectionError] * 3


def test_an_end_announced_with_what_was_written_reaches_the_waiter_and_a_large_one_goes_as_its_id(
    channel: tuple[Wakeups, Announce],
) -> None:
    wakeups, announce = channel
    small, large = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    end = JobEnd("succeeded", now, now, 1, None, {"predictions": [{"label": "Gentoo", "probabilities": {"a": 0.5}}]})
    ends = {small: end, large: dataclasses.replace(end, result={"predictions": [{"value": 1.5}] * 1000})}

    async def scenario() -> tuple[JobEnd | None, JobEnd | None]:
        listener = await listening(wakeups)
        with wakeups.watch(small) as first, wakeups.watch(large) as second:
            await asyncio.to_thread(announce, [small, large], True, ends)
            async with asyncio.timeout(SETTLE_SECONDS):
                await first.wait()
                await second.wait()
        listener.cancel()
        return first.end, second.end

    assert run(scenario) == (end, None), "the large one is read from its row instead"


def test_deployments_sharing_a_postgres_database_do_not_wake_each_others_waiters() -> None:
    """Every schema on a database heard every other's ends: each web parsed the other deployment's announcements
    (and the bench's two stacks side by side woke each other's waiters). A queue name of any length works."""
    url = required_url(POSTGRES)
    engine = create_engine(url)
    ours, theirs = f"test-{uuid.uuid4().hex[:8]}", f"test-{uuid.uuid4().hex}-{'x' * 60}"
    assert postgres_channel(ours) != postgres_channel(theirs)

    async def scenario() -> None:
        listening_here = PostgresWakeups(url, postgres_channel(ours))
        listening_there = PostgresWakeups(url, postgres_channel(theirs))
        listeners = [await listening(listening_here), await listening(listening_there)]
        job_id = uuid.uuid4()
        with listening_here.watch(job_id) as here, listening_there.watch(job_id) as there:
            with Session(engine) as session, session.begin():
                PostgresAnnouncer(postgres_channel(theirs)).announce(session, [job_id])
            async with asyncio.timeout(SETTLE_SECONDS):
                await there.wait()
            await asyncio.sleep(QUIET_SECONDS)
            assert not here.is_set()
        for listener in listeners:
            listener.cancel()

    run(scenario)
    engine.dispose()
