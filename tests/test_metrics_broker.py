"""Queue depth comes from the real broker, and a broker that cannot be reached costs the scrape only that gauge."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kombu import Connection
from sqlalchemy import Engine

from tests.factories import add_job
from tests.metrics import parse, value
from tests.processes import free_port
from tests.services import RABBITMQ, REDIS, required_url
from tests.stacks import delete_queue
from webapp.metrics.broker import queue_depth, queue_probe
from webapp.metrics.exposition import MetricsService
from webapp.metrics.jobs import JobFigureSource


@pytest.fixture(params=[REDIS, RABBITMQ])
def broker_url(request: pytest.FixtureRequest) -> str:
    return required_url(request.param)


@pytest.fixture
def queue(broker_url: str) -> Iterator[str]:
    name = f"apot-test-{uuid.uuid4().hex[:8]}"
    yield name
    delete_queue(broker_url, name)


def test_depth_is_the_number_of_messages_waiting(broker_url: str, queue: str) -> None:
    assert queue_depth(broker_url, queue) == 0  # nothing has declared it yet
    with Connection(broker_url) as connection, connection.SimpleQueue(queue) as waiting:
        for n in range(3):
            waiting.put({"n": n})
        assert queue_depth(broker_url, queue) == 3
        # One taken, as a worker's fetch takes it: no longer waiting (a worker's prefetched messages are in its
        # hands, not in the queue, on both brokers).
        assert connection.default_channel.basic_get(queue, no_ack=True) is not None
        assert queue_depth(broker_url, queue) == 2


def test_an_unreachable_broker_leaves_out_the_depth_and_the_rest_still_answers(engine: Engine) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    assert queue_depth(closed, "apot") is None
    add_job(engine)

    samples = parse(MetricsService(JobFigureSource(engine), queue_probe(closed, "apot")).render().decode())

    assert value(samples, "apot_broker_up") == 0
    assert [key for key in samples if key[0] == "apot_queue_depth"] == []
    assert value(samples, "apot_jobs_finished_total", model="sizes", status="succeeded") == 1


def test_a_reachable_broker_is_up_with_its_depth(engine: Engine, broker_url: str, queue: str) -> None:
    samples = parse(MetricsService(JobFigureSource(engine), queue_probe(broker_url, queue)).render().decode())

    assert value(samples, "apot_broker_up") == 1
    assert ("apot_queue_depth", frozenset({("queue", queue)})) in samples


def test_without_a_broker_there_is_no_broker_gauge(engine: Engine) -> None:
    samples = parse(MetricsService(JobFigureSource(engine), queue_probe("", "apot")).render().decode())

    assert [key for key in samples if key[0].startswith(("apot_broker", "apot_queue"))] == []
