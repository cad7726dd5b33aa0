"""An unexpected error shows the user an id to quote, never a traceback or an SQL statement; the log has both."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.accounts import Account, sign_in
from webapp.config import Settings
from webapp.main import create_app
from webapp.services import history
from webapp.services.models import ModelRegistry

SECRET = "SELECT password FROM users WHERE name = 'admin'"


@pytest.fixture
def failing(
    settings: Settings, registry: ModelRegistry, member: Account, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    """The app with a bug planted in the job listing (a stand-in for any bug: nothing real fails on demand)."""

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"query failed: {SECRET}")

    app = create_app(settings, enqueue=lambda dispatches: None)
    with TestClient(app, raise_server_exceptions=False) as client:
        monkeypatch.setattr(history, "page", broken)
        yield sign_in(client, member)


def test_an_api_error_is_a_500_with_an_id_and_nothing_else(
    failing: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="webapp.http.errors"):
        response = failing.get("/api/v1/jobs")

    assert response.status_code == 500
    detail = response.json()["detail"]
    assert SECRET not in response.text and "Traceback" not in response.text
    (error_id,) = re.findall(r"logged as ([0-9a-f]{12})", detail)
    assert any(error_id in record.getMessage() and record.exc_info for record in caplog.records)


def test_a_page_error_is_a_page_with_the_id(failing: TestClient) -> None:
    response = failing.get("/jobs", headers={"accept": "text/html"})

    assert response.status_code == 500
    assert "text/html" in response.headers["content-type"]
    assert "logged as" in response.text and SECRET not in response.text


def test_the_error_ends_in_its_answer_and_is_logged_once_with_its_type(
    settings: Settings,
    registry: ModelRegistry,
    member: Account,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nothing is raised on to the server (uvicorn logged a second traceback and dropped the connection)."""
    app = create_app(settings, enqueue=lambda dispatches: None)
    with TestClient(app) as client:  # raise_server_exceptions: anything raised past the app fails the test
        sign_in(client, member)
        monkeypatch.setattr(history, "page", lambda *args, **kwargs: 1 / 0)
        with caplog.at_level(logging.ERROR):
            response = client.get("/api/v1/jobs")

    assert response.status_code == 500
    (record,) = [r for r in caplog.records if r.exc_info]
    assert record.getMessage().endswith("GET /api/v1/jobs: ZeroDivisionError")
    assert response.json()["detail"].endswith(record.error_id)  # type: ignore[attr-defined]
