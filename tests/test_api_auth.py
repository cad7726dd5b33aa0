"""The API lets in only a valid key (or, to read, a signed-in browser), and says no the same way whatever was wrong."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.accounts import Account, sign_in
from tests.html import csrf_token, parse

SIZES = {"model": "sizes", "inputs": {"size": 2, "colour": "red"}}
JOB = str(uuid.uuid4())
# Every API route, with a body where it takes one.
ROUTES = [
    ("GET", "/api/v1/models", None),
    ("GET", "/api/v1/models/sizes", None),
    ("POST", "/api/v1/jobs", SIZES),
    ("GET", "/api/v1/jobs", None),
    ("GET", f"/api/v1/jobs/{JOB}", None),
    ("POST", f"/api/v1/jobs/{JOB}/cancel", None),
    ("GET", f"/api/v1/jobs/{JOB}/results.csv", None),
    ("POST", "/api/v1/jobs/csv", None),
]
BAD_HEADERS = [
    {},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer apot_nothing"},
    {"Authorization": "Bearer apot_0123abcd_not-the-secret"},
    {"Authorization": "Basic bWlhOnB3"},
    {"Authorization": "Token apot_0123abcd_x"},
]


def expect_401(response: object) -> None:
    assert response.status_code == 401  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    assert response.json() == {  # type: ignore[attr-defined]
        "type": "about:blank",
        "title": "Unauthorized",
        "status": 401,
        "detail": "a valid API key is required: send it as Authorization: Bearer <key>",
    }
    assert response.headers["www-authenticate"].startswith("Bearer")  # type: ignore[attr-defined]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_no_key_is_a_uniform_401_on_every_route(anonymous: TestClient, method: str, path: str, body: object) -> None:
    expect_401(anonymous.request(method, path, json=body))


@pytest.mark.parametrize("headers", BAD_HEADERS, ids=lambda h: h.get("Authorization", "none"))
def test_a_malformed_or_unknown_key_is_the_same_401(anonymous: TestClient, headers: dict[str, str]) -> None:
    expect_401(anonymous.post("/api/v1/jobs", json=SIZES, headers=headers))


def test_the_key_lets_its_user_in(anonymous: TestClient, member: Account) -> None:
    assert anonymous.get("/api/v1/models", headers=member.bearer).status_code == 200
    created = anonymous.post("/api/v1/jobs", json=SIZES, headers=member.bearer)
    assert created.status_code == 202


def test_a_key_in_the_query_string_is_never_accepted(anonymous: TestClient, member: Account) -> None:
    for name in ("api_key", "key", "token", "access_token"):
        expect_401(anonymous.get("/api/v1/models", params={name: member.key}))


def test_a_revoked_key_is_refused_at_once(anonymous: TestClient, app: FastAPI, member: Account) -> None:
    assert anonymous.get("/api/v1/jobs", headers=member.bearer).status_code == 200
    app.state.accounts.revoke_key(member.key.split("_")[1], user_id=member.principal.user_id)
    expect_401(anonymous.get("/api/v1/jobs", headers=member.bearer))


def test_a_disabled_users_keys_stop_working(anonymous: TestClient, app: FastAPI, member: Account) -> None:
    app.state.accounts.set_disabled(member.name, True)
    expect_401(anonymous.get("/api/v1/models", headers=member.bearer))
    app.state.accounts.set_disabled(member.name, False)
    assert anonymous.get("/api/v1/models", headers=member.bearer).status_code == 200


def test_a_signed_in_browser_may_read_but_not_write(anonymous: TestClient, member: Account) -> None:
    browser = sign_in(anonymous, member)
    del browser.headers["Authorization"]
    assert browser.get("/api/v1/jobs").status_code == 200
    # Writes with only a cookie would be open to cross-site requests: they need the key.
    expect_401(browser.post("/api/v1/jobs", json=SIZES))
    files = {"file": ("a.csv", b"size,colour\n1,red\n")}
    expect_401(browser.post("/api/v1/jobs/csv", files=files, data={"model": "sizes"}))


def test_keys_made_on_the_settings_page_work_and_are_shown_once(client: TestClient, anonymous: TestClient) -> None:
    token = csrf_token(client, "/settings/keys")
    made = client.post("/settings/keys", data={"csrf_token": token, "name": "nightly"})
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    secret = parse(made.text).select_one("#new-key").text  # type: ignore[union-attr]
    assert anonymous.get("/api/v1/models", headers={"Authorization": f"Bearer {secret}"}).status_code == 200

    listed = client.get("/settings/keys").text
    assert secret not in listed, "shown once: the list has only its prefix"
    prefix = secret.split("_")[1]
    assert f"apot_{prefix}_" in listed

    client.post(f"/settings/keys/{prefix}/revoke", data={"csrf_token": token}, follow_redirects=False)
    expect_401(anonymous.get("/api/v1/models", headers={"Authorization": f"Bearer {secret}"}))


def test_a_user_cannot_revoke_another_users_key(client: TestClient, admin: Account, anonymous: TestClient) -> None:
    token = csrf_token(client, "/settings/keys")
    theirs = admin.key.split("_")[1]
    assert client.post(f"/settings/keys/{theirs}/revoke", data={"csrf_token": token}).status_code == 404
    assert anonymous.get("/api/v1/models", headers=admin.bearer).status_code == 200
