"""The job history: filtered, counted, a page at a time, and exported to CSV with the same filters."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, tzinfo
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from webapp.http.auth import CurrentUser
from webapp.http.deps import AccountsDep, JobsDep, ModelsDep, owner_filter
from webapp.http.templating import render
from webapp.models import JobStatus, utcnow
from webapp.services import history
from webapp.services.history import HistoryFilter, day_range
from webapp.services.job_ids import jobs_starting_with
from webapp.services.jobs import JobNotFound
from webapp.services.pagination import BadCursor

router = APIRouter()
PAGE_SIZE = 50


@dataclass
class JobFilters:
    """The history's filters, as the query string carries them: days are the reader's, in their time zone `tz`
    (which static/apot.js fills in; without it, UTC)."""

    status: Annotated[str, Query()] = ""
    model: Annotated[str, Query()] = ""
    user: Annotated[str, Query(description="admins: one user's jobs")] = ""
    first_day: Annotated[str, Query(alias="from", description="YYYY-MM-DD: jobs created on this day or later")] = ""
    last_day: Annotated[str, Query(alias="to", description="YYYY-MM-DD: jobs created on this day or earlier")] = ""
    tz: Annotated[str, Query(description="the time zone of the days, e.g. Europe/Paris")] = ""
    cursor: Annotated[str, Query()] = ""

    def params(self) -> dict[str, str]:
        """The filters for a link to the same list (a page of it, or its export)."""
        values = {
            "status": self.status,
            "model": self.model,
            "user": self.user,
            "from": self.first_day,
            "to": self.last_day,
            "tz": self.tz,
        }
        return {name: value for name, value in values.items() if value}

    def zone(self) -> tzinfo:
        try:
            return ZoneInfo(self.tz) if self.tz else UTC
        except (ZoneInfoNotFoundError, ValueError):
            return UTC

    def chosen(self, owner: uuid.UUID | None) -> tuple[HistoryFilter, str | None]:
        """The filter these choose, and what was left out of it because it was not understood."""
        days: list[date | None] = []
        bad = []
        for text in (self.first_day, self.last_day):
            try:
                days.append(date.fromisoformat(text) if text else None)
            except ValueError:
                days.append(None)
                bad.append(text)
        status = JobStatus(self.status) if self.status in JobStatus._value2member_map_ else None
        notice = f"“{bad[0]}” is not a date (YYYY-MM-DD), so it was left out." if bad else None
        after, before = day_range(days[0], days[1], self.zone())
        return HistoryFilter(owner, status, self.model or None, after, before), notice


def page_owner(user: CurrentUser, accounts: AccountsDep, filters: Annotated[JobFilters, Depends()]) -> uuid.UUID | None:
    return owner_filter(user, accounts, filters.user or None)


FiltersDep = Annotated[JobFilters, Depends()]
OwnerDep = Annotated[uuid.UUID | None, Depends(page_owner)]


@router.get("/jobs", name="jobs_page")
def jobs_page(
    request: Request,
    jobs: JobsDep,
    models: ModelsDep,
    accounts: AccountsDep,
    filters: FiltersDep,
    owner: OwnerDep,
    find: Annotated[str, Query(description="a job id to open")] = "",
) -> Response:
    """The user's jobs (an admin's: everyone's, with their owners), newest first, filtered by status, model, days
    and (admins) user, with their number and a page at a time; or straight to one job by id."""
    notice = _find_job(request, jobs, find.strip()) if find.strip() else None
    if isinstance(notice, Response):
        return notice
    chosen, not_understood = filters.chosen(owner)
    cursor = filters.cursor or None
    try:
        found = history.page(jobs.sessions, chosen, limit=PAGE_SIZE, cursor=cursor, total=True)
    except BadCursor:
        cursor = None
        found = history.page(jobs.sessions, chosen, limit=PAGE_SIZE, total=True)
        notice = "That page link is out of date or was for other filters; here are the newest jobs."
    is_admin = request.state.principal.is_admin
    context = {
        "jobs": found.jobs,
        "owners": found.owners,
        "show_users": is_admin,
        "total": found.total,
        "next_cursor": found.next_cursor,
        "filters": filters,
        "params": filters.params(),
        "zone": str(filters.zone()),
        "status": chosen.status or "",
        "user_names": [u.name for u in accounts.users()] if is_admin else [],
        "find": find,
        "notice": not_understood or notice,
        "statuses": list(JobStatus),
        "models": [m.name for m in models.all_models()],
        "first_page": cursor is None,
    }
    return render(request, "jobs/list.html", context, block="results")


@router.get("/jobs.csv", name="jobs_export")
def jobs_export(request: Request, jobs: JobsDep, filters: FiltersDep, owner: OwnerDep) -> Response:
    """The jobs the history's filters match, as CSV (newest first, at most history.EXPORT_MAX_ROWS), streamed."""
    chosen, _ = filters.chosen(owner)
    rows = history.export_csv(jobs.sessions, chosen, with_users=request.state.principal.is_admin)
    name = f"apot-jobs-{utcnow():%Y%m%d-%H%M%S}.csv"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return StreamingResponse(rows, media_type="text/csv; charset=utf-8", headers=headers)


def _find_job(request: Request, jobs: JobsDep, text: str) -> Response | str:
    """Straight to the job whose id is, or starts with, `text` (the short ids the pages show); else why not."""
    owner = request.state.principal.owner_scope
    try:
        job = jobs.get(uuid.UUID(text), owner=owner)
    except JobNotFound:
        return f"There is no job with id {text}."
    except ValueError:
        found = jobs_starting_with(jobs.sessions, text, owner)
        if found is None:
            return f"“{text}” is not a job id: ids look like 6f1c2a3e-…, as in the first column below."
        if not found:
            return f"No job's id starts with {text}."
        if len(found) > 1:
            return f"Several jobs' ids start with {text}: type more of the id."
        job = found[0]
    return RedirectResponse(request.url_for("job_page", job_id=job.id), status_code=303)
