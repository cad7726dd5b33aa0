"""Every state-changing page refuses a request without this browser's token, or from another site: 403, nothing
made or changed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.html import csrf_token
from webapp.models import ApiKey, Job, User

SIZES = {"model": "sizes", "inputs": {"size": 2, "colour": "red"}}


def counts(engine: Engine) -> tuple[int, ...]:
    with Session(engine) as session:
        return tuple(session.scalar(select(func.count()).select_from(t)) or 0 for t in (Job, User, ApiKey))


# (path, form fields, files) of each state-changing form; "{job}" is an existing job of the user's.
FORMS: list[tuple[str, dict[str, str], Any]] = [
    ("/models/sizes/jobs", {"size": "2", "colour": "red"}, None),
    ("/upload", {"model": "sizes"}, {"file": ("a.csv", b"size,colour\n1,red\n", "text/csv")}),
    ("/jobs/{job}/rerun", {}, None),
    ("/jobs/{job}/cancel", {}, None),
    ("/jobs/{job}/compare", {"version": "1"}, None),
    ("/settings/keys", {"name": "stolen"}, None),
    ("/admin/users", {"name": "eve", "role": "admin"}, None),
    ("/admin/users/mia/disable", {}, None),
    ("/admin/users/mia/reset-password", {}, None),
    ("/logout", {}, None),
    ("/login", {"name": "ada", "password": "correct horse battery"}, None),
]
TAMPERED: dict[str, Callable[[str], dict[str, Any]]] = {
    "no token": lambda token: {"data": {}},
    "wrong token": lambda token: {"data": {"csrf_token": "0" * 64}},
    "wrong header": lambda token: {"headers": {"X-CSRF-Token": token[::-1], "HX-Request": "true"}},
    "other site": lambda token: {"data": {"csrf_token": token}, "headers": {"Origin": "https://evil.example"}},
}


@pytest.mark.parametrize(("path", "fields", "files"), FORMS, ids=[f[0] for f in FORMS])
@pytest.mark.parametrize("how", TAMPERED)
def test_a_missing_wrong_or_foreign_token_is_refused(
    admin_client: TestClient, engine: Engine, path: str, fields: dict[str, str], files: Any, how: str
) -> None:
    job = admin_client.post("/api/v1/jobs", json=SIZES).json()["id"]
    token = csrf_token(admin_client)
    before = counts(engine)
    request = TAMPERED[how](token)
    data = {**fields, **request.get("data", {})}
    response = admin_client.post(
        path.format(job=job), data=data, files=files, headers=request.get("headers"), follow_redirects=False
    )
    assert response.status_code == 403, response.text
    assert counts(engine) == before
    assert admin_client.get("/", follow_redirects=False).status_code == 200, "still signed in"


def test_the_same_forms_pass_with_the_token(admin_client: TestClient, engine: Engine) -> None:
    token = csrf_token(admin_client)
    response = admin_client.post("/settings/keys", data={"name": "mine", "csrf_token": token})
    assert response.status_code == 200
    response = admin_client.post(
        "/models/sizes/jobs", data={"size": "2", "colour": "red"}, headers={"X-CSRF-Token": token, "HX-Request": "true"}
    )
    assert response.status_code == 200
