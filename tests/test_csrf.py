"""Every state-changing page refuses a request without this browser's token, or from another site: 403, nothing
made or changed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.accounts import PASSWORD, Account, sign_in
from tests.html import csrf_token
from webapp.http.auth import SESSION_COOKIE
from webapp.http.security import CSRF_COOKIE
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
    (
        "/settings/password",
        {"current": "correct horse battery", "new": "stolen password", "again": "stolen password"},
        None,
    ),
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


def test_a_token_is_bound_to_its_session(app: FastAPI, member: Account, admin: Account, engine: Engine) -> None:
    """A seed and token planted in another browser (a sibling subdomain can set cookies) pass for no one else."""
    with TestClient(app) as alice, TestClient(app) as bob:
        sign_in(alice, member)
        sign_in(bob, admin)
        token = csrf_token(alice, "/settings/keys")
        before = counts(engine)
        bob.cookies.set(CSRF_COOKIE, alice.cookies[CSRF_COOKIE])
        response = bob.post("/settings/keys", data={"name": "planted", "csrf_token": token})
        assert response.status_code == 403
        assert counts(engine) == before
        assert alice.post("/settings/keys", data={"name": "mine", "csrf_token": token}).status_code == 200


def test_over_https_the_cookies_carry_the_host_prefix(app: FastAPI, admin: Account) -> None:
    with TestClient(app, base_url="https://testserver") as browser:
        token = csrf_token(browser, "/login")
        assert [cookie.name for cookie in browser.cookies.jar] == [f"__Host-{CSRF_COOKIE}"]
        signed_in = browser.post(
            "/login", data={"name": admin.name, "password": PASSWORD, "csrf_token": token}, follow_redirects=False
        )
        assert signed_in.status_code == 303
        cookie = signed_in.headers["set-cookie"]
        assert cookie.startswith(f"__Host-{SESSION_COOKIE}=") and "Secure" in cookie and "Domain" not in cookie
        assert browser.get("/settings/keys", follow_redirects=False).status_code == 200
