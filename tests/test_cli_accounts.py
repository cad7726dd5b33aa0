"""`apot users` and `apot keys`, as an operator provisions accounts, and the first admin of a fresh install."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from webapp.cli import cli
from webapp.config import get_settings
from webapp.db import make_engine, make_session_factory
from webapp.services.accounts import AccountService

runner = CliRunner()


@pytest.fixture
def accounts(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[AccountService]:
    monkeypatch.setenv("APOT_DATABASE_URL", database_url)
    get_settings.cache_clear()
    engine = make_engine(database_url)
    yield AccountService(make_session_factory(engine))
    engine.dispose()
    get_settings.cache_clear()


def apot(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_users_are_added_listed_disabled_and_reset(accounts: AccountService) -> None:
    assert apot("users", "add", "nia", "--password", "long enough pw", "--role", "admin")[0] == 0
    assert apot("users", "add", "otto", "--password", "long enough pw")[0] == 0
    code, out, _ = apot("users", "list")
    assert [line.split("\t")[:3] for line in out.splitlines()] == [
        ["nia", "admin", "active"],
        ["otto", "member", "active"],
    ]
    assert accounts.authenticate("otto", "long enough pw") is not None

    assert apot("users", "disable", "otto")[0] == 0
    assert accounts.authenticate("otto", "long enough pw") is None
    assert apot("users", "disable", "otto", "--enable")[0] == 0

    code, out, _ = apot("users", "reset-password", "otto")
    new_password = out.splitlines()[-1]
    assert code == 0 and accounts.authenticate("otto", new_password) is not None
    assert accounts.authenticate("otto", "long enough pw") is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("users", "add", "x", "--password", "short"), "at least 8 characters"),
        (("users", "add", "x y", "--password", "long enough pw"), "a user name is"),
        (("users", "add", "x", "--password", "long enough pw", "--role", "root"), "admin or member"),
        (("users", "disable", "ghost"), "no user named ghost"),
        (("keys", "create", "ghost"), "no user named ghost"),
        (("keys", "revoke", "deadbeef"), "no key in use"),
    ],
)
def test_bad_requests_exit_1_with_the_reason(accounts: AccountService, args: tuple[str, ...], message: str) -> None:
    code, _, err = apot(*args)
    assert code == 1 and message in err


def test_a_key_made_by_the_command_is_its_last_line_and_can_be_revoked(accounts: AccountService) -> None:
    apot("users", "add", "nia", "--password", "long enough pw")
    code, out, _ = apot("keys", "create", "nia", "--name", "provisioning")
    key = out.splitlines()[-1]
    assert code == 0 and key.startswith("apot_")
    principal = accounts.principal_for_key(key)
    assert principal is not None and principal.name == "nia"

    assert apot("keys", "revoke", key)[0] == 0  # the whole key, or only its prefix
    assert AccountService(accounts.sessions).principal_for_key(key) is None


def test_the_first_start_makes_one_admin_and_shows_its_password_once(accounts: AccountService) -> None:
    password = accounts.ensure_first_admin()
    assert password is not None
    admin = accounts.authenticate("admin", password)
    assert admin is not None and admin.is_admin
    assert accounts.ensure_first_admin() is None, "only while there are no users"
