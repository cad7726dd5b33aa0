"""One logging setup for every process: JSON or text, chosen by APOT_LOG_FORMAT or by whether stderr is a terminal."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from typing import Any, Literal

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from webapp.config import Settings
from webapp.logs import choose_format, job_context, setup_logging


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """setup_logging reconfigures the whole process: put pytest's logging back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


def test_unset_means_text_at_a_terminal_and_json_anywhere_else() -> None:
    primary, secondary = os.openpty()
    with os.fdopen(primary, "w") as terminal, os.fdopen(secondary, "w") as _, open(os.devnull, "w") as file:
        assert choose_format(None, terminal) == "text"
        assert choose_format(None, file) == "json"
        assert choose_format("json", terminal) == "json"
        assert choose_format("text", file) == "text"


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_the_job_and_task_bound_around_them() -> None:
    stream = io.StringIO()
    setup_logging(Settings(log_format="json"), stream=stream)
    log = logging.getLogger("webapp.services.scoring")

    with job_context(task_id="t-1", job_ids=["j-1", "j-2"]):
        log.info("job %s", "succeeded", extra={"job_id": "j-1"})
    log.info("outside any job")

    inside, outside = json_lines(stream)
    assert inside["message"] == "job succeeded"
    assert (inside["job_id"], inside["task_id"], inside["job_ids"]) == ("j-1", "t-1", ["j-1", "j-2"])
    assert (inside["level"], inside["logger"]) == ("info", "webapp.services.scoring")
    assert "task_id" not in outside, "the binding ends with its block"


def test_uvicorn_and_celery_lines_are_json_with_their_fields() -> None:
    stream = io.StringIO()
    setup_logging(Settings(log_format="json"), stream=stream)

    logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "10.0.0.7:5123", "GET", "/readyz", "1.1", 503)
    task = {"id": "t-9", "name": "apot.score_jobs", "args": "('j-9',)"}
    logging.getLogger("celery.app.trace").info("Task %(name)s[%(id)s] received", task, extra={"data": task})
    try:
        raise ValueError("bad row")
    except ValueError:
        logging.getLogger("webapp.services.scoring").exception("job failed while scoring")

    access, celery, failure = json_lines(stream)
    assert (access["method"], access["path"], access["status"]) == ("GET", "/readyz", 503)
    assert (celery["task_id"], celery["task"]) == ("t-9", "apot.score_jobs")
    assert failure["level"] == "error"
    assert "ValueError: bad row" in failure["exception"]


def test_text_lines_are_for_people_and_still_name_the_job() -> None:
    stream = io.StringIO()
    setup_logging(Settings(log_format="text"), stream=stream)

    with job_context(task_id="t-1"):
        logging.getLogger("webapp.services.scoring").info("job succeeded", extra={"job_id": "j-1"})

    (line,) = stream.getvalue().splitlines()
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)
    words = line.split()
    assert words[words.index("job") + 1] == "succeeded"
    assert {"job_id=j-1", "task_id=t-1", "[webapp.services.scoring]"} <= set(words)


def test_the_level_setting_applies() -> None:
    stream = io.StringIO()
    setup_logging(Settings(log_format="json", log_level="WARNING"), stream=stream)
    logging.getLogger("webapp").info("hidden")
    logging.getLogger("webapp").warning("shown")
    assert [line["message"] for line in json_lines(stream)] == ["shown"]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_traceback_is_printed_once_without_local_variables(log_format: Literal["json", "text"]) -> None:
    """Local variables held whole uploads and CSRF tokens: thousands of lines per error, secrets included."""
    stream = io.StringIO()
    setup_logging(Settings(log_format=log_format), stream=stream)

    def failing(token: str) -> None:
        raise OverflowError("int too large to convert to float")

    token = "csrf-" + "3f9a" * 4  # built, so that the source line the traceback quotes does not hold it
    try:
        failing(token)
    except OverflowError:
        logging.getLogger("webapp.http.errors").exception("error 0123abcd on POST /api/v1/jobs: OverflowError")

    output = stream.getvalue()
    assert output.count("Traceback (most recent call last)") == 1
    assert "OverflowError: int too large" in output
    assert token not in output
    assert len(output.splitlines()) < 20 if log_format == "text" else len(output.splitlines()) == 1


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_access_log_keeps_no_key_or_token_from_a_query_string(log_format: Literal["json", "text"]) -> None:
    stream = io.StringIO()
    setup_logging(Settings(log_format=log_format), stream=stream)

    path = "/api/v1/jobs?api_key=apot_1a2b3c4d_s3cret&status=failed&csrf_token=abc123"
    logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "10.0.0.7:5123", "GET", path, "1.1", 401)

    output = stream.getvalue()
    assert "s3cret" not in output and "abc123" not in output
    assert "status=failed" in output and "api_key=[removed]" in output


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_failed_statement_is_logged_without_its_parameters(
    engine: Engine, log_format: Literal["json", "text"]
) -> None:
    """A statement's parameters are users' inputs, password hashes and key digests: its error names none of them."""
    stream = io.StringIO()
    setup_logging(Settings(log_format=log_format), stream=stream)

    secret = "apot_1a2b3c4d_s3cret"  # the traceback prints the failing line: the value must not be written on it
    with pytest.raises(DBAPIError) as raised, engine.connect() as connection:
        connection.execute(text("SELECT * FROM no_such_table WHERE token = :token"), {"token": secret})
    logging.getLogger("webapp.services.intake").warning("could not mark 1 published job", exc_info=raised.value)

    output = stream.getvalue()
    assert "no_such_table" in output, "the statement is still named"
    assert "s3cret" not in output and "s3cret" not in str(raised.value)
