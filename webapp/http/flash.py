"""One-time messages from a form's POST to the page it redirects to (post-redirect-get), so a reload repeats nothing.

The message rides in a cookie signed with the server's secret, dated, HttpOnly and SameSite=strict, bound to the
user who made it, and deleted by the page that shows it: it is shown once, never put in a URL, and worth nothing
after FLASH_SECONDS or in another user's session. It is signed, not encrypted: it carries only what this browser
is about to be shown anyway (a new key's secret, once), and no server keeps a copy.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from webapp.http.security import cookie_name
from webapp.services.accounts import Principal

FLASH_COOKIE = "apot_flash"
# Long enough for the redirect that follows at once; a flash not shown by then is dropped.
FLASH_SECONDS = 60


def _serializer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(request.app.state.secret, salt="apot-flash")


def set_flash(request: Request, response: Response, user: Principal, kind: str, value: Any) -> None:
    """Leave `value` for the next page this user opens that asks for a flash of this `kind`."""
    response.set_cookie(
        cookie_name(request, FLASH_COOKIE),
        str(_serializer(request).dumps([str(user.user_id), kind, value])),
        max_age=FLASH_SECONDS,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def read_flash(request: Request, user: Principal, kind: str) -> Any:
    """The value a POST left for this page, or None; the page then calls `clear_flash` on its response."""
    cookie = request.cookies.get(cookie_name(request, FLASH_COOKIE))
    if not cookie:
        return None
    try:
        owner, flashed_kind, value = _serializer(request).loads(cookie, max_age=FLASH_SECONDS)
    except (BadSignature, ValueError, TypeError):
        return None
    return value if owner == str(user.user_id) and flashed_kind == kind else None


def clear_flash(request: Request, response: Response) -> None:
    """Delete the flash cookie: what it carried is shown once."""
    secure = request.url.scheme == "https"
    response.delete_cookie(cookie_name(request, FLASH_COOKIE), httponly=True, samesite="strict", secure=secure)
