"""The server's secret, and CSRF protection for the pages' state-changing requests.

Signed double-submit: a random seed lives in an HttpOnly cookie, and pages carry HMAC(secret, seed, session) in a
hidden field and in htmx's `hx-headers`. A request that changes state must send that token back; another site can
make the browser send the cookie but cannot read it or compute the token. The token is bound to the session cookie
too, so a seed and token planted in a browser (from a sibling subdomain, say) are worth nothing once its user signs
in, and over HTTPS both cookies carry the `__Host-` prefix, which browsers let only this host set. Origin, when
the browser sends it, must be this host as well.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import HTTPException, Request

from webapp.config import Settings
from webapp.http.limits import read_form

CSRF_COOKIE = "apot_csrf"
SESSION_COOKIE = "apot_session"  # set by auth.py; named here, which auth.py imports, for the token's binding
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SECRET_FILE = "secret_key"  # in the instance's var/


MISSING_SECRET = (
    "APOT_SECRET_KEY is not set. In production (a Postgres database, or APOT_HOST other than loopback) every web "
    "server and worker must share one secret, or sessions and webhook signatures break between machines. Make one "
    "with `openssl rand -hex 32` (or `python -c 'import secrets; print(secrets.token_hex(32))'`) and set "
    "APOT_SECRET_KEY to it on every machine."
)


class MissingSecret(RuntimeError):
    """A production server started without APOT_SECRET_KEY."""


def server_secret(settings: Settings) -> bytes:
    """APOT_SECRET_KEY, or on a laptop (SQLite, loopback) a key made on first start and kept in var/ so every
    restart shares it: `make run` needs no configuration. Production must set it (MissingSecret)."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    if settings.is_production:
        raise MissingSecret(MISSING_SECRET)
    return _stored_secret(settings.var_dir / SECRET_FILE)


def cookie_name(request: Request, name: str) -> str:
    """`name`, with the `__Host-` prefix over HTTPS: such a cookie is set only by this host, Secure, for every path."""
    return f"__Host-{name}" if request.url.scheme == "https" else name


def _stored_secret(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process of this server made it first
            return path.read_bytes().strip()
        with os.fdopen(descriptor, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_bytes().strip()


def csrf_token(request: Request) -> str:
    """The token for this browser's seed and session; makes a new seed (to be set as a cookie) when it has none."""
    seed = request.cookies.get(cookie_name(request, CSRF_COOKIE), "")
    if not _is_seed(seed):
        seed = request.state.new_csrf_seed = secrets.token_hex(32)
    return _sign(request, seed)


def _sign(request: Request, seed: str) -> str:
    session = request.cookies.get(cookie_name(request, SESSION_COOKIE), "")
    return hmac.new(request.app.state.secret, f"{seed}\n{session}".encode(), hashlib.sha256).hexdigest()


def _is_seed(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


async def require_csrf(request: Request) -> None:
    """Dependency of every page route that changes state: 403 unless the request carries this browser's token."""
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.headers.get("host"):
        raise HTTPException(403, "This form was sent from another site, so it was refused.")
    seed = request.cookies.get(cookie_name(request, CSRF_COOKIE), "")
    sent = request.headers.get(CSRF_HEADER)
    form = None
    if sent is None:
        form = await read_form(request)
        field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else ""
    if not _is_seed(seed) or not hmac.compare_digest(_sign(request, seed), sent):
        if form is not None:
            await form.close()  # an uploaded file waits in a temporary file: do not leave it to the collector
        raise HTTPException(403, "The form's security token is missing or out of date. Reload the page and try again.")
