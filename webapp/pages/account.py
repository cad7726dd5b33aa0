"""Signing in and out, a user's own password and API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from webapp.http.auth import CurrentUser, end_session, safe_next, start_session
from webapp.http.deps import AccountsDep
from webapp.http.flash import clear_flash, read_flash, set_flash
from webapp.http.limits import read_form
from webapp.http.security import require_csrf
from webapp.http.templating import render
from webapp.services.accounts import MIN_PASSWORD_LENGTH, AccountError, WrongPassword

# Open to everyone: the way in.
public = APIRouter()
# For signed-in users (pages/__init__.py requires the session).
router = APIRouter()
# A page showing a secret once must not be kept by a browser or a proxy.
NO_STORE = {"Cache-Control": "no-store"}


@public.get("/login", name="login_page")
def login_page(request: Request, next: Annotated[str, Query()] = "") -> Response:
    """The sign-in form; `next` is where to go afterwards (a path on this site)."""
    return render(request, "account/login.html", {"next": safe_next(next), "name": "", "error": ""})


@public.post("/login", name="login", dependencies=[Depends(require_csrf)])
async def login(request: Request, accounts: AccountsDep) -> Response:
    """Check the name and password; on success the session cookie is set and the user sent on."""
    form = await read_form(request)
    name, password = str(form.get("name") or "").strip(), str(form.get("password") or "")
    target = safe_next(str(form.get("next") or ""))
    limits, address = request.app.state.sign_in_limits, request.client.host if request.client else ""
    wait = limits.retry_after(name, address)
    if wait is not None:
        context = {"next": target, "name": name, "error": f"Too many attempts: try again in {wait} s."}
        return render(request, "account/login.html", context, status_code=429, headers={"Retry-After": str(wait)})
    principal = await run_in_threadpool(accounts.authenticate, name, password) if name and password else None
    if principal is None:
        limits.failed(name, address)
        # One message for a wrong name and a wrong password: which of the two is not told.
        context = {"next": target, "name": name, "error": "That name and password do not match an active account."}
        return render(request, "account/login.html", context, status_code=422)
    limits.succeeded(name, address)
    response = RedirectResponse(target, status_code=303)
    start_session(request, response, principal)
    return response


@router.post("/logout", name="logout", dependencies=[Depends(require_csrf)])
def logout(request: Request, user: CurrentUser, accounts: AccountsDep) -> Response:
    """Sign out, here and in every other browser of this user."""
    accounts.end_sessions(user.user_id)
    response = RedirectResponse(request.url_for("login_page"), status_code=303)
    end_session(request, response)
    return response


@router.get("/settings/account", name="account_page")
def account_page(request: Request, user: CurrentUser) -> Response:
    """The signed-in user's account: a form to change their password (and, once, word that it was changed)."""
    changed = read_flash(request, user, "password") is not None
    response = render(request, "account/password.html", _password_context(changed=changed))
    if changed:
        clear_flash(request, response)
    return response


@router.post("/settings/password", name="change_password", dependencies=[Depends(require_csrf)])
async def change_password(request: Request, user: CurrentUser, accounts: AccountsDep) -> Response:
    """Change one's own password, given the current one. Wrong guesses are slowed down exactly as at sign-in (same
    counters); every other session of the user ends, and this browser gets a new session cookie."""
    form = await read_form(request)
    current, new, again = (str(form.get(field) or "") for field in ("current", "new", "again"))
    limits, address = request.app.state.sign_in_limits, request.client.host if request.client else ""
    wait = limits.retry_after(user.name, address)
    if wait is not None:
        context = _password_context(error=f"Too many attempts: try again in {wait} s.")
        return render(request, "account/password.html", context, status_code=429, headers={"Retry-After": str(wait)})
    if new != again:
        context = _password_context(error="the two new passwords differ")
        return render(request, "account/password.html", context, status_code=422)
    try:
        principal = await run_in_threadpool(accounts.change_password, user.user_id, current, new)
    except AccountError as exc:
        if isinstance(exc, WrongPassword):
            limits.failed(user.name, address)
        return render(request, "account/password.html", _password_context(error=str(exc)), status_code=422)
    limits.succeeded(user.name, address)
    response = RedirectResponse(request.url_for("account_page"), status_code=303)
    start_session(request, response, principal)
    set_flash(request, response, principal, "password", True)
    return response


def _password_context(error: str = "", changed: bool = False) -> dict[str, object]:
    return {"error": error, "changed": changed, "min_length": MIN_PASSWORD_LENGTH}


@router.get("/settings/keys", name="keys_page")
def keys_page(request: Request, user: CurrentUser, accounts: AccountsDep) -> Response:
    """The user's API keys: when each was made and last used, which are revoked, and a form for a new one; right
    after "Make a key", the new key, this once."""
    new_key = read_flash(request, user, "new_key")
    context = {"keys": accounts.keys(user.user_id), "new_key": new_key, "error": ""}
    if new_key is None:
        return render(request, "account/keys.html", context)
    response = render(request, "account/keys.html", context, headers=NO_STORE)
    clear_flash(request, response)
    return response


@router.post("/settings/keys", name="create_key", dependencies=[Depends(require_csrf)])
async def create_key(request: Request, user: CurrentUser, accounts: AccountsDep) -> Response:
    """Make a key, then redirect to the keys page, which shows it this once: a reload makes no other key."""
    name = str((await read_form(request)).get("name") or "")
    try:
        new_key = accounts.create_key(user.user_id, name)
    except AccountError as exc:
        context = {"keys": accounts.keys(user.user_id), "new_key": None, "error": str(exc)}
        return render(request, "account/keys.html", context, status_code=422)
    response = RedirectResponse(request.url_for("keys_page"), status_code=303)
    set_flash(request, response, user, "new_key", {"name": new_key.name, "secret": new_key.secret})
    return response


@router.post("/settings/keys/{prefix}/revoke", name="revoke_key", dependencies=[Depends(require_csrf)])
def revoke_key(request: Request, prefix: str, user: CurrentUser, accounts: AccountsDep) -> Response:
    """Revoke one of the user's own keys; scripts using it get 401 from then on."""
    try:
        accounts.revoke_key(prefix, user_id=user.user_id)
    except AccountError as exc:
        raise HTTPException(404, str(exc)) from exc
    return RedirectResponse(request.url_for("keys_page"), status_code=303)
