"""The Python client and `apot predict` without a server: how answers become errors, progress, and a bar.

Against a live server they run in tests/e2e/test_client.py.
"""

from __future__ import annotations

import io
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx2
import pytest
from rich.console import Console

from apot.client import ApotError, Client, Progress, field_name
from tests.processes import apot_env, free_port
from webapp.cli.predict import RowsBar


def error_for(status: int, headers: dict[str, str] | None = None, **body: object) -> ApotError:
    return ApotError.from_response(httpx2.Response(status, headers=headers, json=body))


def test_validation_errors_become_one_line_per_field() -> None:
    error = error_for(
        422,
        detail=[
            {"loc": ["body", "inputs", "island"], "msg": "Input should be 'Biscoe', 'Dream' or 'Torgersen'"},
            {"loc": ["body", "inputs", 2, "bill_length_mm"], "msg": "Input should be a valid number"},
        ],
    )

    assert error.status == 422
    assert str(error).splitlines() == [
        "HTTP 422: the request was refused:",
        "  inputs.island: Input should be 'Biscoe', 'Dream' or 'Torgersen'",
        "  inputs[2].bill_length_mm: Input should be a valid number",
    ]
    assert error.detail[0]["loc"] == ["body", "inputs", "island"], "the server's detail is kept as it came"


@pytest.mark.parametrize(
    ("loc", "name"),
    [(["body", "file"], "file"), (["query", "wait"], "query.wait"), (["body"], "request"), ([], "request")],
)
def test_field_names_leave_out_the_body(loc: list[object], name: str) -> None:
    assert field_name(loc) == name


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (401, "send a valid API key"),
        (403, "may not do that"),
        (404, "HTTP 404: model 'nope' is not registered"),
        (503, "try again in a moment"),
    ],
)
def test_each_status_explains_itself(status: int, says: str) -> None:
    error = error_for(status, detail="model 'nope' is not registered")

    assert error.status == status
    assert error.detail == "model 'nope' is not registered"
    assert says in str(error)


def test_too_many_requests_says_when_to_come_back() -> None:
    in_seconds = error_for(429, {"Retry-After": "7"}, detail="slow down")
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    at_a_date = error_for(429, {"Retry-After": later}, detail="slow down")

    assert in_seconds.retry_after == 7
    assert "retry after 7 s" in str(in_seconds)
    assert at_a_date.retry_after is not None and 100 < at_a_date.retry_after <= 120


def test_an_answer_that_is_not_json_is_quoted() -> None:
    error = ApotError.from_response(httpx2.Response(502, text="<html>Bad Gateway</html>"))

    assert error.status == 502
    assert str(error) == "HTTP 502: <html>Bad Gateway</html>"


def test_a_server_that_is_not_listening_is_named() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    with Client(url) as client, pytest.raises(ApotError) as caught:
        client.models()

    assert caught.value.status is None
    assert f"cannot reach apot at {url}" in str(caught.value)


class Recorder(BaseHTTPRequestHandler):
    """A server that answers every GET with an empty list and remembers the Authorization header it got."""

    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization"))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"[]")

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_an_api_key_is_sent_as_a_bearer_token_when_given_and_http_is_the_default_scheme() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    address = f"127.0.0.1:{server.server_address[1]}"
    try:
        with Client(f"http://{address}/", api_key="k-123") as keyed, Client(address) as keyless:
            assert keyed.models() == keyless.models() == []
    finally:
        server.shutdown()
        server.server_close()

    assert Recorder.seen == ["Bearer k-123", None]


def test_the_command_names_the_server_it_could_not_reach() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    done = subprocess.run(
        [sys.executable, "-m", "webapp.cli", "predict", "--model", "penguins", "--json", "{}"],
        env=apot_env(url=url),  # APOT_URL, as a user would set it
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 1
    assert f"cannot reach apot at {url}" in done.stderr
    assert done.stdout == ""


def test_the_command_wants_a_file_or_json_but_not_both() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "webapp.cli", "predict", "--model", "penguins"],
        env=apot_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2
    assert "either a CSV FILE or --json" in done.stderr


def test_the_client_imports_no_server_code() -> None:
    heavy = ["fastapi", "starlette", "sqlalchemy", "celery", "pydantic", "pandas", "sklearn"]
    probe = f"import sys, apot.client; print([m for m in {heavy!r} if m in sys.modules])"

    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)

    assert done.stdout.strip() == "[]"


def test_progress_reads_the_job_counts() -> None:
    job = {"id": "x", "status": "running", "rows_done": 40, "rows_failed": 2, "rows_total": 100}

    progress = Progress.of(job)

    assert progress == Progress("running", 40, 2, 100)
    assert not progress.ended
    assert Progress.of({**job, "status": "cancelled"}).ended


def test_the_bar_shows_rows_done_of_total() -> None:
    out = io.StringIO()

    with RowsBar(Console(file=out, force_terminal=True, width=100)) as bar:
        bar.update(Progress("queued", 0, 0, 5000))
        bar.update(Progress("running", 2000, 0, 5000))
        bar.update(Progress("succeeded", 5000, 3, 5000))

    last = out.getvalue().rsplit("\r", 1)[-1]
    assert "succeeded" in last
    assert "5000/5000" in last
