"""The web's intake: jobs that arrive together are stored in one transaction and travel in one message."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.orm import Session

from tests.accounts import Account
from tests.conftest import RecordingEnqueue
from webapp.models import Job, JobStatus
from webapp.services import intake as intake_module
from webapp.services.dispatch import SCORE_JOBS
from webapp.services.events import SilentAnnouncer, Wakeups
from webapp.services.intake import JobIntake
from webapp.services.jobs import JobRequest, JobService, not_stored
from webapp.services.models import ModelRegistry

GENTOO = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}
# Long enough that a group closed by the window, rather than by the rules under test, would be noticed.
LONG_WINDOW = 30.0


@pytest.fixture
def enqueue() -> RecordingEnqueue:
    return RecordingEnqueue()


def make_intake(registry: ModelRegistry, enqueue: RecordingEnqueue, max_rows: int) -> JobIntake:
    return JobIntake(registry.sessions, enqueue, max_rows=max_rows, wait_seconds=LONG_WINDOW)


@pytest.fixture
def intake(registry: ModelRegistry, enqueue: RecordingEnqueue) -> Iterator[JobIntake]:
    intake = make_intake(registry, enqueue, max_rows=256)
    intake.start()
    yield intake
    intake.stop()


def service(registry: ModelRegistry, intake: JobIntake, enqueue: RecordingEnqueue) -> JobService:
    return JobService(registry.sessions, registry, intake, enqueue, SilentAnnouncer(), Wakeups(), max_rows=100)


def test_a_lone_submission_is_stored_and_published_without_waiting_for_company(
    registry: ModelRegistry, intake: JobIntake, enqueue: RecordingEnqueue, engine: Engine
) -> None:
    job = service(registry, intake, enqueue).prepare(JobRequest("penguins", None, GENTOO))

    pending = intake.submit(job)
    stored = pending.stored.result(timeout=LONG_WINDOW / 3)
    assert pending.published.result(timeout=LONG_WINDOW / 3) is True

    assert enqueue.dispatches[0].task == SCORE_JOBS
    assert enqueue.published == [str(stored.id)]
    with Session(engine) as session:
        assert session.get_one(Job, stored.id).task_id == enqueue.dispatches[0].task_id


def test_submissions_arriving_together_share_one_commit_and_one_message(
    registry: ModelRegistry, intake: JobIntake, enqueue: RecordingEnqueue, engine: Engine
) -> None:
    jobs = service(registry, intake, enqueue)
    with intake.arriving():  # another request is still being validated: the group waits for it
        pending = [intake.submit(jobs.prepare(JobRequest("penguins", None, GENTOO))) for _ in range(3)]
        pending.append(intake.submit(jobs.prepare(JobRequest("penguins", None, [GENTOO, GENTOO]))))
    stored = [p.stored.result(timeout=5) for p in pending]
    assert all(p.published.result(timeout=5) for p in pending)

    (dispatch,) = enqueue.dispatches
    assert sorted(dispatch.targets) == sorted(str(job.id) for job in stored)
    with Session(engine) as session:
        task_ids = set(session.scalars(select(Job.task_id)))
    assert task_ids == {dispatch.task_id}


def test_a_group_holds_at_most_max_rows(registry: ModelRegistry, enqueue: RecordingEnqueue) -> None:
    intake = make_intake(registry, enqueue, max_rows=3)
    intake.start()
    try:
        jobs = service(registry, intake, enqueue)
        with intake.arriving():
            pending = [intake.submit(jobs.prepare(JobRequest("penguins", None, [GENTOO] * 2))) for _ in range(3)]
            for full in pending[:2]:  # full groups go at once, without waiting for the arrival to end
                full.published.result(timeout=LONG_WINDOW / 3)
    finally:
        intake.stop()

    assert [len(d.targets) for d in enqueue.dispatches] == [2, 1], "2 + 2 rows reach 3; the third job waits"


def test_when_the_broker_is_unreachable_the_jobs_stay_queued_for_the_reconciler(
    registry: ModelRegistry, intake: JobIntake, enqueue: RecordingEnqueue, engine: Engine
) -> None:
    enqueue.fail = True
    jobs = service(registry, intake, enqueue)
    with intake.arriving():
        pending = [intake.submit(jobs.prepare(JobRequest("penguins", None, GENTOO))) for _ in range(2)]

    assert [p.stored.result(timeout=5).status for p in pending] == [JobStatus.QUEUED] * 2
    assert [p.published.result(timeout=5) for p in pending] == [False, False]
    with Session(engine) as session:
        waiting = session.execute(select(Job.status, Job.published_at)).all()
    assert waiting == [(JobStatus.QUEUED, None)] * 2, "queued, publish pending"


def test_a_job_is_marked_published_only_once_its_task_reached_the_broker(
    registry: ModelRegistry, intake: JobIntake, enqueue: RecordingEnqueue, engine: Engine
) -> None:
    jobs = service(registry, intake, enqueue)
    pending = intake.submit(jobs.prepare(JobRequest("penguins", None, GENTOO)))
    assert pending.published.result(timeout=5) is True

    def marked() -> bool:
        with Session(engine) as session:
            return session.get_one(Job, pending.job.id).published_at is not None

    # Written after the publish: a process that dies in between leaves the job to the reconciler's short grace.
    until(marked, "the job to be marked published")


def test_jobs_of_different_models_arriving_together_travel_in_messages_of_their_own(
    registry: ModelRegistry, intake: JobIntake, enqueue: RecordingEnqueue
) -> None:
    jobs = service(registry, intake, enqueue)
    with intake.arriving():
        penguins = [intake.submit(jobs.prepare(JobRequest("penguins", None, GENTOO))) for _ in range(2)]
        sizes = intake.submit(jobs.prepare(JobRequest("sizes", None, {"size": 2.0, "colour": "red"})))
    assert all(p.published.result(timeout=5) for p in [*penguins, sizes])

    # A slow model's time limit then fails its own message's jobs only.
    assert sorted(sorted(d.targets) for d in enqueue.dispatches) == sorted(
        [sorted(str(p.job.id) for p in penguins), [str(sizes.job.id)]]
    )


class Gate:
    """Wraps a function so that its first call waits until the test opens the gate."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function
        self.entered = threading.Event()
        self.opened = threading.Event()
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == 1:
            self.entered.set()
            assert self.opened.wait(30), "the test never opened the gate"
        return self.function(*args, **kwargs)


def started_intake(registry: ModelRegistry, enqueue: Callable[..., Any], **options: Any) -> JobIntake:
    """An intake that closes each group at once (no window to wait for)."""
    intake = JobIntake(registry.sessions, enqueue, max_rows=256, wait_seconds=0, **options)
    intake.start()
    return intake


def give_up_waiting(future: Future[Any]) -> None:
    """What a request's deadline does to the future it awaits: asyncio cancels the wrapper and the future."""

    async def wait() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.wrap_future(future), 0.05)
        await asyncio.sleep(0.05)  # the cancellation reaches the wrapped future on the next turn of the loop

    asyncio.run(wait())


def test_a_request_that_gives_up_on_a_slow_publish_leaves_the_publish_thread_working(
    registry: ModelRegistry, enqueue: RecordingEnqueue
) -> None:
    slow = Gate(enqueue)
    intake = started_intake(registry, slow)
    try:
        first = intake.submit(service(registry, intake, enqueue).prepare(JobRequest("penguins", None, GENTOO)))
        assert slow.entered.wait(10)
        give_up_waiting(first.published)
        slow.opened.set()
        assert first.published.result(timeout=10) is True

        later = intake.submit(service(registry, intake, enqueue).prepare(JobRequest("penguins", None, GENTOO)))
        assert later.published.result(timeout=10) is True
        assert intake.problem() is None
    finally:
        slow.opened.set()
        intake.stop()
    assert enqueue.published == [str(first.job.id), str(later.job.id)]


def test_a_request_that_gives_up_on_a_slow_store_gets_a_true_answer_and_the_store_thread_goes_on(
    registry: ModelRegistry, enqueue: RecordingEnqueue, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = Gate(intake_module.insert_new)
    monkeypatch.setattr(intake_module, "insert_new", slow)
    intake = started_intake(registry, enqueue)
    jobs = service(registry, intake, enqueue)
    try:
        taken = intake.submit(jobs.prepare(JobRequest("penguins", None, GENTOO)))
        assert slow.entered.wait(10)
        waiting = intake.submit(jobs.prepare(JobRequest("penguins", None, GENTOO, idempotency_key="k-1")))
        give_up_waiting(taken.stored)
        give_up_waiting(waiting.stored)
        # The store thread had the first job in hand: it may have been created, and the answer says how to tell.
        assert str(taken.job.id) in str(not_stored(taken))
        # The second was still in the queue: withdrawn, it will never be created.
        assert "it was not created" in str(not_stored(waiting))
        slow.opened.set()

        later = jobs.create(JobRequest("penguins", None, GENTOO))
    finally:
        slow.opened.set()
        intake.stop()
    with Session(engine) as session:
        stored = set(session.scalars(select(Job.id)))
    assert stored == {taken.job.id, later.id}
    assert intake.problem() is not None, "stopped"


def fail_the_next_insert(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    def failing(*_args: Any) -> set[Any]:
        monkeypatch.undo()
        raise error

    monkeypatch.setattr(intake_module, "insert_new", failing)


def test_an_error_in_one_group_fails_that_group_only(
    registry: ModelRegistry, intake: JobIntake, enqueue: RecordingEnqueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_the_next_insert(monkeypatch, RuntimeError("a bug in the insert"))
    jobs = service(registry, intake, enqueue)
    first = intake.submit(jobs.prepare(JobRequest("penguins", None, GENTOO)))
    with pytest.raises(RuntimeError):
        first.stored.result(timeout=10)

    assert jobs.create(JobRequest("penguins", None, GENTOO)).status == JobStatus.QUEUED


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the thread's end, on purpose
def test_an_intake_thread_that_ends_is_started_again(
    registry: ModelRegistry, intake: JobIntake, enqueue: RecordingEnqueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_the_next_insert(monkeypatch, SystemExit("ends the thread, as nothing in the intake catches it"))
    jobs = service(registry, intake, enqueue)
    intake.submit(jobs.prepare(JobRequest("penguins", None, GENTOO)))
    until(lambda: intake.problem() is not None, "the store thread to end")

    until(lambda: intake.problem() is None, "the watcher to start it again")
    assert jobs.create(JobRequest("penguins", None, GENTOO)).status == JobStatus.QUEUED


def test_a_stuck_intake_is_reported_and_handed_to_on_stuck(
    registry: ModelRegistry, enqueue: RecordingEnqueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(intake_module, "STUCK_AFTER_SECONDS", 0.5)
    stuck = Gate(enqueue)
    reported: list[str] = []
    intake = started_intake(registry, stuck, on_stuck=reported.append)
    try:
        intake.submit(service(registry, intake, enqueue).prepare(JobRequest("penguins", None, GENTOO)))
        until(lambda: bool(reported), "the watcher to report the stuck publish")
        assert "apot-intake-publish has been busy" in (intake.problem() or "")
    finally:
        stuck.opened.set()
        intake.stop()
    assert reported[0].startswith("apot-intake-publish has been busy")


def until(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout:.0f} s for {what}"
        time.sleep(0.05)


def test_a_retry_with_the_same_idempotency_key_gets_the_first_job_back(
    registry: ModelRegistry,
    intake: JobIntake,
    enqueue: RecordingEnqueue,
    engine: Engine,
    member: Account,
    admin: Account,
) -> None:
    jobs = service(registry, intake, enqueue)
    mine = member.principal.user_id
    first = jobs.create(JobRequest("penguins", None, GENTOO, idempotency_key="order-17", owner_id=mine))
    with intake.arriving():  # two more retries, arriving together
        retries = [
            intake.submit(
                jobs.prepare(JobRequest("penguins", None, [GENTOO] * 2, idempotency_key="order-17", owner_id=mine))
            )
            for _ in range(2)
        ]
    other = jobs.create(JobRequest("penguins", None, GENTOO, idempotency_key="order-18", owner_id=mine))
    # Keys are per user: another user's "order-17" is a job of their own.
    theirs = jobs.create(
        JobRequest("penguins", None, GENTOO, idempotency_key="order-17", owner_id=admin.principal.user_id)
    )
    assert all(r.published.result(timeout=5) for r in retries)

    assert [r.stored.result(timeout=5).id for r in retries] == [first.id, first.id]
    assert other.id != first.id and theirs.id not in (first.id, other.id)
    assert enqueue.published == [str(first.id), str(other.id), str(theirs.id)], "each job published once"
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 3


def test_stopping_stores_and_publishes_what_was_handed_in(
    registry: ModelRegistry, enqueue: RecordingEnqueue, engine: Engine
) -> None:
    intake = make_intake(registry, enqueue, max_rows=256)
    intake.start()
    jobs = service(registry, intake, enqueue)
    with intake.arriving():
        pending = intake.submit(jobs.prepare(JobRequest("penguins", None, GENTOO)))
        intake.stop()

    assert pending.stored.result(timeout=0).status == JobStatus.QUEUED
    assert pending.published.result(timeout=0) is True
    assert enqueue.published == [str(pending.job.id)]


def test_a_member_whose_write_fails_fails_alone_and_the_rest_of_its_group_is_stored(
    registry: ModelRegistry, intake: JobIntake, enqueue: RecordingEnqueue, engine: Engine
) -> None:
    jobs = service(registry, intake, enqueue)
    first = jobs.create(JobRequest("penguins", None, GENTOO))
    clash = jobs.prepare(JobRequest("penguins", None, GENTOO))
    clash.id = first.id  # a row the database refuses (its primary key is taken), as any write error would be
    with intake.arriving():
        pending = [intake.submit(jobs.prepare(JobRequest("penguins", None, GENTOO))) for _ in range(2)]
        pending.insert(1, intake.submit(clash))

    good = [pending[0].stored.result(timeout=5), pending[2].stored.result(timeout=5)]
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        pending[1].stored.result(timeout=5)
    assert pending[1].published.result(timeout=5) is False
    assert all(pending[i].published.result(timeout=5) for i in (0, 2))
    with Session(engine) as session:
        stored = set(session.scalars(select(Job.id)))
    assert stored == {first.id, *(job.id for job in good)}
    assert set(enqueue.published) == {str(job.id) for job in [first, *good]}


def test_a_submission_that_stopped_waiting_does_not_stop_the_next_ones(
    registry: ModelRegistry, intake: JobIntake, enqueue: RecordingEnqueue
) -> None:
    """A request gives up waiting for its publish (its future is cancelled): the publisher goes on for the others."""
    jobs = service(registry, intake, enqueue)
    gave_up = intake.submit(jobs.prepare(JobRequest("penguins", None, GENTOO)))
    gave_up.published.cancel()
    gave_up.stored.cancel()

    later = intake.submit(jobs.prepare(JobRequest("penguins", None, GENTOO)))
    assert later.published.result(timeout=LONG_WINDOW / 3) is True
    assert str(later.stored.result(timeout=1).id) in enqueue.published


def test_the_store_threads_connection_dropped_by_the_database_is_replaced_without_failing_a_submission(
    registry: ModelRegistry, intake: JobIntake, enqueue: RecordingEnqueue, engine: Engine
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no server to drop a connection")
    jobs = service(registry, intake, enqueue)
    jobs.create(JobRequest("penguins", None, GENTOO))
    held = intake._connection.connection
    assert held is not None, "the store thread keeps its connection between groups"
    with engine.connect() as admin:  # as a database restart does, to that connection only
        admin.execute(select(func.pg_terminate_backend(held.connection.dbapi_connection.info.backend_pid)))  # type: ignore[union-attr]

    second = jobs.create(JobRequest("penguins", None, GENTOO))

    with Session(engine) as session:
        assert session.get_one(Job, second.id).status == JobStatus.QUEUED
    assert intake._connection.connection is not held


def test_marking_jobs_published_skips_one_a_worker_is_claiming_instead_of_waiting_for_it(
    registry: ModelRegistry, intake: JobIntake, enqueue: RecordingEnqueue, engine: Engine
) -> None:
    """A claim holds its jobs' rows while it waits for the others of its message: had the mark waited for them
    in turn, the two deadlocked (under 64 clients, a second's stall of the publish thread each time)."""
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite has one writer at a time: no two transactions hold rows")
    jobs = service(registry, intake, enqueue)
    claimed, free = (jobs.create(JobRequest("penguins", None, GENTOO)).id for _ in range(2))
    with Session(engine) as session:
        session.execute(update(Job).where(Job.id.in_([claimed, free])).values(published_at=None))
        session.commit()
    with engine.connect() as worker:
        worker.execute(text("SELECT id FROM jobs WHERE id = :id FOR UPDATE"), {"id": claimed})
        marking = threading.Thread(target=intake_module.mark_published, args=(registry.sessions, [claimed, free]))
        marking.start()
        marking.join(timeout=10)
        assert not marking.is_alive(), "the mark waited for the claimed job"
        worker.rollback()
    with Session(engine) as session:
        marked = dict(session.execute(select(Job.id, Job.published_at).where(Job.id.in_([claimed, free]))).all())
    assert marked[free] is not None
    assert marked[claimed] is None, "left to the reconciler, should that claim be rolled back"
