"""`apot users ...` and `apot keys ...`: accounts from the command line, for the first admin and for provisioning."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from webapp.config import get_settings

if TYPE_CHECKING:  # imported by the commands that use it: every `apot` process imports this module
    from webapp.services.accounts import AccountService

users_cli = typer.Typer(help="Add, list, disable and reset users.", no_args_is_help=True)
keys_cli = typer.Typer(help="Make and revoke API keys.", no_args_is_help=True)


@contextmanager
def open_accounts() -> Iterator[AccountService]:
    """The account service on a database connection of its own, for one command."""
    from webapp.db import make_engine, make_session_factory
    from webapp.services.accounts import AccountError, AccountService

    engine = make_engine(get_settings().database_url)
    try:
        yield AccountService(make_session_factory(engine))
    except AccountError as exc:
        typer.echo(f"apot: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()


def _password(given: str | None) -> str:
    if given is not None:
        return given
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        typer.echo("apot: the two passwords differ", err=True)
        raise typer.Exit(1)
    return first


@users_cli.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Sign-in name")],
    password: Annotated[str | None, typer.Option(help="Default: asked for, not echoed")] = None,
    role: Annotated[str, typer.Option(help="admin or member")] = "member",
) -> None:
    """Add a user who can sign in to the dashboard."""
    with open_accounts() as accounts:
        user = accounts.create_user(name, _password(password), role)
    typer.echo(f"added {user.name} ({user.role})")


@users_cli.command("list")
def list_users() -> None:
    """Every user, with role and state."""
    with open_accounts() as accounts:
        for user in accounts.users():
            state = "disabled" if user.disabled else "active"
            typer.echo(f"{user.name}\t{user.role}\t{state}\tcreated {user.created_at:%Y-%m-%d}")


@users_cli.command("disable")
def disable(name: str, enable: Annotated[bool, typer.Option("--enable", help="Enable again instead")] = False) -> None:
    """Disable a user: their sessions end and their API keys stop working at once."""
    with open_accounts() as accounts:
        accounts.set_disabled(name, not enable)
    typer.echo(f"{name} is {'enabled' if enable else 'disabled'}")


@users_cli.command("reset-password")
def reset_password(
    name: str,
    password: Annotated[str | None, typer.Option(help="Default: a random one, printed")] = None,
) -> None:
    """Set a user's password (ending their sessions); prints a random one when none is given."""
    with open_accounts() as accounts:
        chosen = accounts.reset_password(name, password)
    typer.echo(f"the password of {name} was changed")
    if password is None:
        typer.echo(chosen)


@keys_cli.command("create")
def create_key(
    user: Annotated[str, typer.Argument(help="The user the key acts for")],
    name: Annotated[str, typer.Option(help="What the key is for")] = "cli",
) -> None:
    """Make an API key for a user; the key itself is the last line printed (and is not stored anywhere)."""
    with open_accounts() as accounts:
        key = accounts.create_key(accounts.get_user(user).id, name)
    typer.echo(f"key {key.name} for {user} (revoke with: apot keys revoke {key.prefix})", err=True)
    typer.echo(key.secret)


@keys_cli.command("revoke")
def revoke_key(prefix: Annotated[str, typer.Argument(help="The 8 characters after apot_, or the whole key")]) -> None:
    """Revoke a key: requests with it get 401 from then on."""
    if prefix.startswith("apot_"):
        prefix = prefix.split("_")[1]
    with open_accounts() as accounts:
        accounts.revoke_key(prefix)
    typer.echo(f"revoked apot_{prefix}_…")


def announce_first_admin(url: str) -> None:
    """With no users yet, make an admin and print its password once, as Jupyter prints its token."""
    with open_accounts() as accounts:
        password = accounts.ensure_first_admin()
    if password:
        typer.echo(
            f"\nNo users yet, so an admin was made. Sign in at {url}/login as  admin  with the password\n\n"
            f"    {password}\n\nIt is shown only this once: change it with `apot users reset-password admin`.\n"
        )
