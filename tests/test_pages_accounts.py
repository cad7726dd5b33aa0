"""Signing in and out, sessions that end when they should, and the admin's users page."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.accounts import PASSWORD, Account
from tests.html import csrf_token, one, parse
from webapp.http.auth import SESSION_COOKIE
from webapp.http.ratelimit import SignInLimits


def sign_in_with_form(client: TestClient, name: str, password: str, next: str = "") -> object:
    token = csrf_token(client, "/login")
    form = {"csrf_token": token, "name": name, "password": password, "next": next}
    return client.post("/login", data=form, follow_redirects=False)


def test_pages_send_a_stranger_to_the_sign_in_page_and_back(anonymous: TestClient, member: Account) -> None:
    response = anonymous.get("/jobs?status=failed", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "http://testserver/login?next=%2Fjobs%3Fstatus%3Dfailed"

    signed_in = sign_in_with_form(anonymous, member.name, PASSWORD, next="/jobs?status=failed")
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/jobs?status=failed"  # type: ignore[attr-defined]
    assert anonymous.get("/jobs").status_code == 200


def test_an_htmx_poll_without_a_session_sends_the_whole_page_to_sign_in(anonymous: TestClient) -> None:
    response = anonymous.get("/jobs", headers={"HX-Request": "true"})
    assert response.status_code == 401 and response.headers["hx-redirect"].startswith("http://testserver/login")


def test_the_session_cookie_is_httponly_and_samesite_lax(anonymous: TestClient, member: Account) -> None:
    response = sign_in_with_form(anonymous, member.name, PASSWORD)
    cookie = response.headers["set-cookie"]  # type: ignore[attr-defined]
    assert cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie


def test_over_https_the_cookie_is_secure(app: FastAPI, member: Account) -> None:
    with TestClient(app, base_url="https://testserver") as client:
        response = sign_in_with_form(client, member.name, PASSWORD)
    assert "Secure" in response.headers["set-cookie"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(("name", "password"), [("mia", "wrong password"), ("nobody", PASSWORD), ("mia", "")])
def test_a_wrong_name_or_password_gets_one_message(
    anonymous: TestClient, member: Account, name: str, password: str
) -> None:
    response = sign_in_with_form(anonymous, name, password)
    assert response.status_code == 422  # type: ignore[attr-defined]
    error = one(parse(response.text), ".field-error").text  # type: ignore[attr-defined]
    assert error == "That name and password do not match an active account."
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")  # type: ignore[attr-defined]


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:x"])
def test_signing_in_never_sends_the_user_to_another_site(anonymous: TestClient, member: Account, target: str) -> None:
    response = sign_in_with_form(anonymous, member.name, PASSWORD, next=target)
    assert response.headers["location"] == "/"  # type: ignore[attr-defined]


def test_signing_out_ends_the_session_everywhere(app: FastAPI, member: Account) -> None:
    with TestClient(app) as laptop, TestClient(app) as phone:
        sign_in_with_form(laptop, member.name, PASSWORD)
        sign_in_with_form(phone, member.name, PASSWORD)
        stolen = laptop.cookies[SESSION_COOKIE]
        token = csrf_token(laptop, "/")
        assert laptop.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
        assert phone.get("/", follow_redirects=False).status_code == 303, "the other browser is signed out too"
        laptop.cookies.set(SESSION_COOKIE, stolen)
        assert laptop.get("/", follow_redirects=False).status_code == 303, "an old cookie no longer works"


def test_a_forged_or_tampered_cookie_is_no_session(anonymous: TestClient, member: Account) -> None:
    sign_in_with_form(anonymous, member.name, PASSWORD)
    value = anonymous.cookies[SESSION_COOKIE]
    anonymous.cookies.clear()
    anonymous.cookies.set(SESSION_COOKIE, value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert anonymous.get("/", follow_redirects=False).status_code == 303


def test_a_disabled_user_cannot_sign_in_and_loses_their_session(
    client: TestClient, anonymous: TestClient, app: FastAPI, member: Account
) -> None:
    app.state.accounts.set_disabled(member.name, True)
    assert client.get("/", follow_redirects=False).status_code == 303
    assert sign_in_with_form(anonymous, member.name, PASSWORD).status_code == 422  # type: ignore[attr-defined]


def test_members_cannot_open_the_users_page(client: TestClient) -> None:
    assert client.get("/admin/users", headers={"accept": "text/html"}).status_code == 403
    token = csrf_token(client)
    assert client.post("/admin/users", data={"csrf_token": token, "name": "eve", "role": "admin"}).status_code == 403
    assert "Users" not in [a.text for a in parse(client.get("/").text).select("nav a")]


def test_an_admin_adds_a_user_who_can_then_sign_in(admin_client: TestClient, anonymous: TestClient) -> None:
    token = csrf_token(admin_client, "/admin/users")
    added = admin_client.post("/admin/users", data={"csrf_token": token, "name": "cleo", "role": "member"})
    assert added.status_code == 200 and added.headers["cache-control"] == "no-store"
    password = one(parse(added.text), "#new-password").text
    assert sign_in_with_form(anonymous, "cleo", password).status_code == 303  # type: ignore[attr-defined]

    again = admin_client.post("/admin/users", data={"csrf_token": token, "name": "cleo", "role": "member"})
    assert again.status_code == 422 and "already a user named cleo" in again.text

    disabled = admin_client.post("/admin/users/cleo/disable", data={"csrf_token": token}, follow_redirects=False)
    assert disabled.status_code == 303
    assert anonymous.get("/", follow_redirects=False).status_code == 303


def test_an_admin_cannot_disable_themselves(admin_client: TestClient, admin: Account) -> None:
    token = csrf_token(admin_client, "/admin/users")
    assert admin_client.post(f"/admin/users/{admin.name}/disable", data={"csrf_token": token}).status_code == 409


def test_guessing_passwords_is_slowed_down(anonymous: TestClient, member: Account) -> None:
    anonymous.app.state.sign_in_limits = SignInLimits(clock=lambda: 0.0)  # type: ignore[attr-defined]  # time stands still
    codes = [sign_in_with_form(anonymous, member.name, f"guess {i}").status_code for i in range(7)]  # type: ignore[attr-defined]
    assert codes == [422] * 6 + [429]
    refused = sign_in_with_form(anonymous, member.name, PASSWORD)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1  # type: ignore[attr-defined]
    assert "Too many attempts" in one(parse(refused.text), ".field-error").text  # type: ignore[attr-defined]


def test_the_owner_at_their_usual_address_signs_in_while_others_guess(app: FastAPI, member: Account) -> None:
    """Guesses from elsewhere, past the name's limit, slow down only those who make them (they locked the admin out)."""
    app.state.sign_in_limits = SignInLimits(per_name="3/hour", clock=lambda: 0.0)

    def browser(address: str) -> TestClient:  # no `with`: the app's lifespan (and these limits) already run
        return TestClient(app, client=(address, 50000))

    assert sign_in_with_form(browser("198.51.100.1"), member.name, PASSWORD).status_code == 303  # type: ignore[attr-defined]
    guesses = [sign_in_with_form(browser(f"203.0.113.{i}"), member.name, "guess").status_code for i in range(4)]  # type: ignore[attr-defined]
    assert guesses == [422, 422, 422, 429]
    assert sign_in_with_form(browser("198.51.100.1"), member.name, PASSWORD).status_code == 303  # type: ignore[attr-defined]
    assert sign_in_with_form(browser("192.0.2.1"), member.name, PASSWORD).status_code == 429  # type: ignore[attr-defined]
