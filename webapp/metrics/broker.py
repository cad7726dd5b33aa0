"""How many task messages wait in the broker's queue, asked with a short timeout so a scrape never hangs on it."""

from __future__ import annotations

import logging
from collections.abc import Callable

from kombu import Connection

# A scrape answers even when the broker is down or slow: the question gets this long, once.
PROBE_TIMEOUT_SECONDS = 1.0

log = logging.getLogger(__name__)

# Asked on each scrape: the queue and its depth (None: the broker cannot be reached), or None without a broker.
QueueProbe = Callable[[], tuple[str, int | None] | None]


def queue_depth(broker_url: str, queue: str, timeout: float = PROBE_TIMEOUT_SECONDS) -> int | None:
    """Messages ready in `queue` (Redis: the list's length; RabbitMQ: a passive declare's message_count), 0 for a
    queue no worker has declared yet, None when the broker cannot be reached."""
    # Redis reads the socket_* options, RabbitMQ (py-amqp) the *_timeout ones; each ignores the other's.
    options = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "read_timeout": timeout,
        "write_timeout": timeout,
        "max_retries": 0,
    }
    try:
        with Connection(broker_url, connect_timeout=timeout, transport_options=options) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
            try:
                declared = connection.default_channel.queue_declare(queue=queue, passive=True)
            except connection.channel_errors:  # 404: nothing has declared it, so nothing waits in it
                return 0
            return int(declared.message_count)
    except Exception as exc:  # whatever the transport raises, the scrape goes on without the figure
        log.warning("queue depth of %r unknown: %s", queue, exc)
        return None


def queue_probe(broker_url: str, queue: str) -> QueueProbe:
    """The probe of `queue` on the broker at `broker_url` (none configured: no queue to tell of)."""

    def probe() -> tuple[str, int | None] | None:
        return (queue, queue_depth(broker_url, queue)) if broker_url else None

    return probe
