"""Logging for every apot process: one setup, JSON lines for a log collector or readable text in a terminal.

apot, uvicorn and Celery all log through the standard `logging` module; structlog only renders the lines. A line
about a job carries `job_id` (or `job_ids`) and `task_id` as fields: passed with `extra=` at the call, or bound
for a whole task with `job_context`, so every line logged inside it (Celery's own too) has them.
"""

from __future__ import annotations

import logging
import logging.config
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from webapp.config import Settings

# A query parameter whose name contains one of these words, and its value up to the next & or space.
SECRET_QUERY_VALUE = re.compile(r"([?&][^=&\s]*(?:key|token|secret|password|auth)[^=&\s]*)=[^&\s]*", re.IGNORECASE)
LOGGERS_OF_OTHERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "celery", "alembic")


def choose_format(setting: str | None, stream: TextIO) -> str:
    """`json` or `text`: the setting if given, else text for a person at a terminal and JSON for everyone else."""
    if setting:
        return setting
    return "text" if stream.isatty() else "json"


def log_config(settings: Settings, *, level: str | None = None, stream: TextIO | None = None) -> dict[str, Any]:
    """A `logging.config.dictConfig` dict; also handed to uvicorn, which applies it again in each of its workers."""
    renderer = choose_format(settings.log_format, stream or sys.stderr)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"apot": {"()": "webapp.logs.make_formatter", "renderer": renderer}},
        "handlers": {
            "apot": {"class": "logging.StreamHandler", "formatter": "apot", "stream": stream or "ext://sys.stderr"}
        },
        "root": {"handlers": ["apot"], "level": (level or settings.log_level).upper()},
        # Their own handlers off: each line goes once, through ours.
        "loggers": {
            **{name: {"handlers": [], "propagate": True} for name in LOGGERS_OF_OTHERS},
            # Alembic names each of its plugins at INFO whenever the migration scripts are read.
            "alembic.runtime.plugins": {"level": "WARNING"},
        },
    }


def setup_logging(settings: Settings, *, level: str | None = None, stream: TextIO | None = None) -> None:
    """Send every logger of this process to stderr (or `stream`) in the format APOT_LOG_FORMAT chooses."""
    logging.config.dictConfig(log_config(settings, level=level, stream=stream))
    logging.captureWarnings(True)  # a library's warning is a line in the same format, not raw text on stderr


def make_formatter(renderer: str) -> structlog.stdlib.ProcessorFormatter:
    """The formatter of the handler `log_config` sets up."""
    if renderer == "json":
        last: list[Processor] = [
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            structlog.processors.JSONRenderer(serializer=_dumps),
        ]
    else:
        # A plain traceback: structlog's default (rich's) prints every frame's local variables, which held whole
        # uploads and CSRF tokens: thousands of lines per error, secrets included.
        last = [structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            _fields_of_others,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *last],
        pass_foreign_args=True,  # for _fields_of_others
    )


@contextmanager
def job_context(**fields: object) -> Iterator[None]:
    """Every line logged inside (in this thread or task) carries these fields, e.g. job_id and task_id."""
    with structlog.contextvars.bound_contextvars(**{k: _plain(v) for k, v in fields.items()}):
        yield


def _plain(value: object) -> object:
    # UUIDs and the like as their text, so both renderers print them as a log search would spell them.
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value if isinstance(value, str | int | float | bool | None) else str(value)


def _fields_of_others(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    """uvicorn's access line and Celery's task lines as fields, not only inside the message."""
    event.pop("color_message", None)  # uvicorn's coloured copy of the message
    args = event.pop("positional_args", None)
    if event["_record"].name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
        event.update(zip(("client", "method", "path", "http_version", "status"), args, strict=True))
        event["path"] = _without_secrets(str(event["path"]))
        event["event"] = _without_secrets(str(event["event"]))
    data = event.pop("data", None)
    if isinstance(data, dict) and "id" in data:  # Celery's "Task ... received / succeeded" lines
        event.setdefault("task_id", str(data["id"]))
        event.setdefault("task", data.get("name"))
    return event


def _without_secrets(text: str) -> str:
    """A URL's query values whose names say they are secret, blanked: apot reads keys only from headers, but a
    client may still put one in the URL (`?api_key=`), and the access log must not keep it."""
    return SECRET_QUERY_VALUE.sub(r"\1=[removed]", text)


def _dumps(event: EventDict, **_options: Any) -> str:
    return orjson.dumps(event, default=str).decode()
