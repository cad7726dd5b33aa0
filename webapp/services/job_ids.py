"""Finding a job by the start of its id: the pages show ids shortened to 8 characters, and people paste those."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from webapp.models import Job
from webapp.services.jobs import owned_by

HEX_PREFIX = re.compile(r"^[0-9a-f]{4,32}$")


def id_range(text: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """The ids that start with `text` (at least 4 hex digits; dashes and case ignored) as an inclusive range, or
    None. A range, not LIKE, so the primary key's index answers it on SQLite and Postgres alike."""
    digits = text.replace("-", "").lower()
    if not HEX_PREFIX.match(digits):
        return None
    return uuid.UUID(digits.ljust(32, "0")), uuid.UUID(digits.ljust(32, "f"))


def jobs_starting_with(
    sessions: sessionmaker[Session], text: str, owner: uuid.UUID | None, limit: int = 2
) -> list[Job] | None:
    """Up to `limit` of the owner's jobs (None: anyone's) whose id starts with `text`; None if it is no id's start."""
    bounds = id_range(text)
    if bounds is None:
        return None
    query = owned_by(select(Job).where(Job.id.between(*bounds)), owner).order_by(Job.id).limit(limit)
    with sessions() as session:
        return list(session.scalars(query))
