"""Rendering pages and their HTMX fragments from one template each (autoescaping on for every .html file)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from jinja2_fragments.fastapi import Jinja2Blocks
from markupsafe import Markup

from webapp.background.retention import pruned_message
from webapp.http.security import CSRF_COOKIE, CSRF_FIELD, CSRF_HEADER, cookie_name, csrf_token
from webapp.models import JobStatus, utcnow

ROOT = Path(__file__).resolve().parents[2]
STATIC_DIR = ROOT / "static"
HTMX = "vendor/htmx-2.0.11.min.js"

templates = Jinja2Blocks(directory=ROOT / "templates")


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def redirect(request: Request, url: str) -> Response:
    """After a write: htmx follows HX-Redirect (a plain redirect would be swapped into the page), browsers a 303."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any],
    *,
    block: str | None = None,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The whole page; or, for an HTMX request, only `block` of it (the part the request targets)."""
    token = csrf_token(request)
    response = templates.TemplateResponse(
        request,
        name,
        {
            "csrf_token": token,
            "csrf_field": CSRF_FIELD,
            "csrf_header": CSRF_HEADER,
            "htmx": HTMX,
            "user": getattr(request.state, "principal", None),
            **context,
        },
        status_code=status_code,
        headers=headers,
        block_name=block if block and is_htmx(request) else None,
    )
    new_seed = getattr(request.state, "new_csrf_seed", None)
    if new_seed:
        secure = request.url.scheme == "https"
        response.set_cookie(cookie_name(request, CSRF_COOKIE), new_seed, httponly=True, samesite="lax", secure=secure)
    return response


def seconds(delta: timedelta | None) -> str:
    """A duration as people read it: 12 ms, 3.4 s, 2 min 5 s."""
    if delta is None:
        return "—"
    total = delta.total_seconds()
    if total < 1:
        return f"{total * 1000:.0f} ms"
    if total < 60:
        return f"{total:.1f} s"
    minutes, rest = divmod(int(total), 60)
    return f"{minutes} min {rest} s"


def timestamp(moment: datetime | None) -> Markup:
    """A moment as a <time> element in UTC, which static/apot.js shows in the reader's own time zone."""
    if moment is None:
        return Markup("—")
    moment = moment.astimezone(UTC)
    machine, text = moment.strftime("%Y-%m-%dT%H:%M:%SZ"), moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup('<time datetime="{}">{}</time>').format(machine, text)


def elapsed(job: Any) -> str:
    """How long the job has been in its current state, or how long it took once it ended."""
    if JobStatus(job.status).ended:
        return seconds(job.finished_at - job.created_at) if job.finished_at else "—"
    return seconds(utcnow() - (job.started_at or job.created_at))


def progress(job: Any) -> dict[str, Any]:
    """Percent done, rows per second so far, and a guess at the time left, for a CSV job's progress bar."""
    percent = int(100 * job.rows_done / job.rows_total) if job.rows_total else 0
    if not job.started_at or not job.rows_done:
        return {"percent": percent, "rate": 0, "left": ""}
    end = job.finished_at or utcnow()
    rate = job.rows_done / max((end - job.started_at).total_seconds(), 1e-3)
    ended = JobStatus(job.status).ended
    left = "" if ended else seconds(timedelta(seconds=(job.rows_total - job.rows_done) / rate))
    return {"percent": percent, "rate": int(rate), "left": left}


def nice_ceiling(value: float) -> float:
    """The top of a chart's scale: the smallest 1, 2 or 5 times a power of ten at or above `value` (1 for none)."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value * (1 - 1e-9))


def short_seconds(value: float) -> str:
    """A latency on a chart's axis: 5 ms, 250 ms, 2.5 s, 1 min."""
    if value < 1:
        return f"{value * 1000:g} ms"
    return f"{value / 60:g} min" if value >= 60 else f"{value:g} s"


templates.env.filters["seconds"] = seconds
templates.env.filters["short_seconds"] = short_seconds
templates.env.globals["short_seconds"] = short_seconds
templates.env.globals["nice_ceiling"] = nice_ceiling
templates.env.globals["progress"] = progress
templates.env.filters["timestamp"] = timestamp
templates.env.globals["elapsed"] = elapsed
templates.env.globals["JobStatus"] = JobStatus
templates.env.globals["pruned_message"] = pruned_message
