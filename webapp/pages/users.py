"""Managing users (admins only): add, disable or enable, and reset a password."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from webapp.http.auth import AdminUser, require_admin
from webapp.http.deps import AccountsDep
from webapp.http.limits import read_form
from webapp.http.security import require_csrf
from webapp.http.templating import render
from webapp.models import Role
from webapp.pages.account import NO_STORE
from webapp.services.accounts import AccountError, new_password

router = APIRouter(prefix="/admin/users", dependencies=[Depends(require_admin)])


def _page(request: Request, accounts: AccountsDep, status_code: int = 200, **context: Any) -> Response:
    context = {"users": accounts.users(), "roles": list(Role), "shown": None, "error": "", "values": {}, **context}
    return render(request, "admin/users.html", context, status_code=status_code, headers=NO_STORE)


@router.get("", name="users_page")
def users_page(request: Request, accounts: AccountsDep) -> Response:
    """Every user with their role and state, and a form for a new one."""
    return _page(request, accounts)


@router.post("", name="add_user", dependencies=[Depends(require_csrf)])
async def add_user(request: Request, accounts: AccountsDep) -> Response:
    """Add a user with a random password, shown once to pass on."""
    form = await read_form(request)
    name, role = str(form.get("name") or "").strip(), str(form.get("role") or Role.MEMBER)
    password = new_password()
    try:
        accounts.create_user(name, password, role)
    except AccountError as exc:
        return _page(request, accounts, 422, error=str(exc), values={"name": name, "role": role})
    return _page(request, accounts, shown={"name": name, "password": password})


@router.post("/{name}/disable", name="disable_user", dependencies=[Depends(require_csrf)])
def disable_user(request: Request, name: str, accounts: AccountsDep, admin: AdminUser) -> Response:
    """Disable an account: its sessions end and its keys stop working."""
    if name == admin.name:
        raise HTTPException(409, "You cannot disable your own account; ask another admin.")
    return _change(request, lambda: accounts.set_disabled(name, True))


@router.post("/{name}/enable", name="enable_user", dependencies=[Depends(require_csrf)])
def enable_user(request: Request, name: str, accounts: AccountsDep) -> Response:
    """Let a disabled user in again."""
    return _change(request, lambda: accounts.set_disabled(name, False))


@router.post("/{name}/reset-password", name="reset_password", dependencies=[Depends(require_csrf)])
def reset_password(request: Request, name: str, accounts: AccountsDep) -> Response:
    """A new random password, shown once; the user's sessions end."""
    try:
        password = accounts.reset_password(name)
    except AccountError as exc:
        raise HTTPException(404, str(exc)) from exc
    return _page(request, accounts, shown={"name": name, "password": password})


def _change(request: Request, change: Callable[[], None]) -> Response:
    try:
        change()
    except AccountError as exc:
        raise HTTPException(404, str(exc)) from exc
    return RedirectResponse(request.url_for("users_page"), status_code=303)
