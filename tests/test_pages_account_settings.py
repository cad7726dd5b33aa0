"""A user's own settings: changing the password, and keys made with post-redirect-get, shown once, with "last used"."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.accounts import PASSWORD, Account, sign_in
from tests.html import csrf_token, one, parse
from webapp.http.ratelimit import SignInLimits
from webapp.http.templating import timestamp
from webapp.models import ApiKey
from webapp.services.models import ModelRegistry

NEW_PASSWORD = "a much better passphrase"


def change(client: TestClient, current: str, new: str, again: str | None = None) -> object:
    token = csrf_token(client, "/settings/account")
    form = {"csrf_token": token, "current": current, "new": new, "again": new if again is None else again}
    return client.post("/settings/password", data=form, follow_redirects=False)


def sign_in_with(client: TestClient, name: str, password: str) -> int:
    token = csrf_token(client, "/login")
    form = {"csrf_token": token, "name": name, "password": password}
    return client.post("/login", data=form, follow_redirects=False).status_code


def test_a_user_changes_their_password_stays_signed_in_here_and_is_signed_out_elsewhere(
    app: FastAPI, client: TestClient, member: Account
) -> None:
    # No `with`: the app's lifespan already runs (a second one would make resources of its own).
    elsewhere, stranger = sign_in(TestClient(app), member), TestClient(app)
    elsewhere.headers.pop("Authorization")
    assert elsewhere.get("/settings/account", follow_redirects=False).status_code == 200

    changed = change(client, PASSWORD, NEW_PASSWORD)
    assert changed.status_code == 303 and changed.headers["location"].endswith("/settings/account")  # type: ignore[attr-defined]
    page = client.get("/settings/account")
    assert page.status_code == 200 and "Your password was changed" in one(parse(page.text), "[role=status]").text
    assert "Your password was changed" not in client.get("/settings/account").text, "said once"

    assert elsewhere.get("/settings/account", follow_redirects=False).status_code != 200, "signed out there"
    assert sign_in_with(stranger, member.name, PASSWORD) == 422
    assert sign_in_with(stranger, member.name, NEW_PASSWORD) == 303
    assert client.get("/api/v1/models").status_code == 200, "API keys keep working (the page says so)"


def test_the_current_password_is_required_and_the_new_one_checked(client: TestClient, member: Account) -> None:
    wrong = change(client, "not my password", NEW_PASSWORD)
    assert wrong.status_code == 422 and "not your current password" in wrong.text  # type: ignore[attr-defined]
    short = change(client, PASSWORD, "short")
    assert short.status_code == 422 and "at least 8 characters" in short.text  # type: ignore[attr-defined]
    differ = change(client, PASSWORD, NEW_PASSWORD, "something else entirely")
    assert differ.status_code == 422 and "differ" in differ.text  # type: ignore[attr-defined]
    assert client.get("/settings/account", follow_redirects=False).status_code == 200, "still signed in"


def test_guessing_the_current_password_is_slowed_down_like_signing_in(
    app: FastAPI, client: TestClient, member: Account
) -> None:
    app.state.sign_in_limits = SignInLimits(clock=lambda: 0.0)
    answers = [change(client, f"guess {i}", NEW_PASSWORD).status_code for i in range(7)]  # type: ignore[attr-defined]
    assert answers[:5] == [422] * 5 and answers[-1] == 429
    refused = change(client, PASSWORD, NEW_PASSWORD)
    assert refused.status_code == 429 and refused.headers["retry-after"]  # type: ignore[attr-defined]


def test_a_new_key_is_made_once_shown_once_and_never_put_in_a_url(
    app: FastAPI, client: TestClient, registry: ModelRegistry
) -> None:
    token = csrf_token(client, "/settings/keys")
    made = client.post("/settings/keys", data={"csrf_token": token, "name": "nightly"}, follow_redirects=False)
    assert made.status_code == 303 and made.headers["location"].endswith("/settings/keys")
    shown = client.get("/settings/keys")
    secret = one(parse(shown.text), "#new-key").text
    assert secret.startswith("apot_") and secret not in made.headers["location"]
    assert shown.headers["cache-control"] == "no-store"

    reloaded = client.get("/settings/keys").text
    assert secret not in reloaded and not parse(reloaded).select("#new-key"), "shown once"
    with registry.sessions() as session:
        assert session.scalar(select(func.count()).where(ApiKey.name == "nightly")) == 1


def test_a_new_keys_flash_is_for_its_user_only(app: FastAPI, client: TestClient, admin_client: TestClient) -> None:
    token = csrf_token(client, "/settings/keys")
    made = client.post("/settings/keys", data={"csrf_token": token, "name": "mine"}, follow_redirects=False)
    admin_client.cookies.set("apot_flash", made.cookies["apot_flash"])
    assert not parse(admin_client.get("/settings/keys").text).select("#new-key")


def test_an_empty_key_name_is_refused_with_a_reason(client: TestClient, registry: ModelRegistry) -> None:
    token = csrf_token(client, "/settings/keys")
    refused = client.post("/settings/keys", data={"csrf_token": token, "name": "  "}, follow_redirects=False)
    assert refused.status_code == 422
    assert "give the key a name" in one(parse(refused.text), "#key-name-error").text
    with registry.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ApiKey)) == 1, "only the fixture's key"


def test_the_keys_page_says_when_each_key_was_last_used(
    client: TestClient, anonymous: TestClient, member: Account
) -> None:
    before = parse(client.get("/settings/keys").text)
    assert one(before, "#keys td[data-label='Last used']").text.strip() == "never"
    assert anonymous.get("/api/v1/models", headers=member.bearer).status_code == 200
    used = one(parse(client.get("/settings/keys").text), "#keys td[data-label='Last used'] time")
    moment = datetime.fromisoformat(str(used["datetime"]))
    assert abs((datetime.now(UTC) - moment).total_seconds()) < 60 and used.text.endswith(" UTC")


def test_times_are_time_elements_in_utc_that_say_so() -> None:
    moment = datetime(2026, 12, 1, 16, 5, 9, tzinfo=UTC)
    element = one(parse(str(timestamp(moment))), "time")
    assert element["datetime"] == "2026-12-01T16:05:09Z" and element.text == "2026-12-01 16:05:09 UTC"
    assert str(timestamp(None)) == "—"
