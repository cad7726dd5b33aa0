"""Who is asking: signed session cookies for people, Bearer keys for scripts, and the dependencies that demand them.

A session cookie holds only the user's id and session version, signed with the server's secret and dated; the
user row is read on every request, so a disabled account, a new password or a sign-out ends it at once.
"""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool

from webapp.http.security import SESSION_COOKIE, cookie_name
from webapp.services.accounts import AccountService, Principal

BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="apot"'}
INVALID_KEY = "a valid API key is required: send it as Authorization: Bearer <key>"
# Reading is all a browser session may do on the API: its writes go through the pages, which check CSRF.
SAFE_METHODS = ("GET", "HEAD")


class LoginRequired(Exception):
    """A page was asked for without a valid session: answered with the login page (see errors.py)."""


def _serializer(secret: bytes) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="apot-session")


def session_cookie(secret: bytes, principal: Principal) -> str:
    """The signed, dated value of a session cookie for this user."""
    return str(_serializer(secret).dumps([str(principal.user_id), principal.session_version]))


def start_session(request: Request, response: Response, principal: Principal) -> None:
    """Set the session cookie for a user who just signed in."""
    response.set_cookie(
        cookie_name(request, SESSION_COOKIE),
        session_cookie(request.app.state.secret, principal),
        max_age=int(request.app.state.settings.session_hours * 3600),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def end_session(request: Request, response: Response) -> None:
    secure = request.url.scheme == "https"
    response.delete_cookie(cookie_name(request, SESSION_COOKIE), httponly=True, samesite="lax", secure=secure)


def _accounts(request: Request) -> AccountService:
    return request.app.state.accounts


def _session_principal(request: Request) -> Principal | None:
    cookie = request.cookies.get(cookie_name(request, SESSION_COOKIE))
    if not cookie:
        return None
    max_age = request.app.state.settings.session_hours * 3600
    try:
        user_id, version = _serializer(request.app.state.secret).loads(cookie, max_age=max_age)
        parsed = uuid.UUID(user_id), int(version)
    except (BadSignature, ValueError, TypeError):
        return None
    return _accounts(request).session_user(*parsed)


def page_user(request: Request) -> Principal:
    """Dependency of every page: the signed-in user, or the login page."""
    principal = _session_principal(request)
    if principal is None:
        raise LoginRequired
    request.state.principal = principal
    return principal


# Declares the key in the OpenAPI document (its security scheme), so generated clients and Swagger send it.
BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="An API key made on the Keys page or with `apot keys`: `Authorization: Bearer <key>`.",
)


async def api_principal(
    request: Request, bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
) -> Principal:
    """Dependency of every API route: the key's user, or a uniform 401. Keys in the URL are never looked at."""
    if request.headers.get("authorization") is not None:
        secret = bearer.credentials.strip() if bearer is not None else ""
        if not secret:  # another scheme, or none
            raise HTTPException(401, INVALID_KEY, headers=BEARER_CHALLENGE)
        accounts = _accounts(request)
        hit, principal = accounts.cached_key(secret)
        if not hit:
            principal = await run_in_threadpool(accounts.principal_for_key, secret)
    elif request.method in SAFE_METHODS:
        principal = await run_in_threadpool(_session_principal, request)
    else:
        principal = None
    if principal is None:
        raise HTTPException(401, INVALID_KEY, headers=BEARER_CHALLENGE)
    request.state.principal = principal
    return principal


async def current_principal(request: Request) -> Principal:
    """The principal the router-level dependency already found (pages or API alike); async so that it costs no
    thread hop."""
    principal = getattr(request.state, "principal", None)
    if principal is None:
        raise LoginRequired
    return principal


CurrentUser = Annotated[Principal, Depends(current_principal)]


async def require_admin(user: CurrentUser) -> Principal:
    """Dependency of what only admins may do: manage models and users."""
    if not user.is_admin:
        raise HTTPException(403, "Only an admin can do this.")
    return user


AdminUser = Annotated[Principal, Depends(require_admin)]


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never //host or a full URL)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
