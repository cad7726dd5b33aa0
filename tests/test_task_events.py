"""Celery task events are on unless APOT_TASK_EVENTS turns them off, for the workers and the web's publisher alike."""

from __future__ import annotations

import pytest

from tasks.app import create_celery
from webapp.config import Settings


@pytest.mark.parametrize("publisher", [False, True])
@pytest.mark.parametrize("events", [True, False])
def test_task_events_follow_the_setting(events: bool, publisher: bool) -> None:
    settings = Settings(broker_url="redis://127.0.0.1:1/0", task_events=events)
    conf = create_celery(settings, publisher=publisher).conf
    assert (conf.worker_send_task_events, conf.task_send_sent_event) == (events, events)


def test_they_are_on_by_default() -> None:
    assert Settings(broker_url="redis://127.0.0.1:1/0").task_events is True
