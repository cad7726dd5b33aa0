"""The statements that store new small jobs: one INSERT for many, and the jobs retried under an Idempotency-Key."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import insert, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from webapp.models import Job, jobs_table


def insert_new(session: Session, jobs: Sequence[Job]) -> set[uuid.UUID]:
    """Insert the jobs; those whose idempotency key is already taken are left out. Returns the ids inserted."""
    keyed = [job for job in jobs if job.idempotency_key]
    plain = [job for job in jobs if not job.idempotency_key]
    connection = session.connection()
    row = {job.id: {column.key: getattr(job, column.key) for column in jobs_table.columns} for job in jobs}
    if plain:  # the common case, and the cheapest statement: one cached INSERT, many parameter sets
        connection.execute(insert(jobs_table), [row[job.id] for job in plain])
    inserted = {job.id for job in plain}
    if keyed:
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(jobs_table).on_conflict_do_nothing().returning(jobs_table.c.id)
        inserted |= set(connection.execute(statement, [row[job.id] for job in keyed]).scalars())
    return inserted


def stored_earlier(session: Session, retried: list[Job]) -> dict[tuple[uuid.UUID | None, str], Job]:
    """The jobs stored before under the retried jobs' (owner, idempotency key) pairs."""
    keys = [(job.owner_id, job.idempotency_key) for job in retried if job.idempotency_key]
    if not keys:
        return {}
    query = select(Job).where(tuple_(Job.owner_id, Job.idempotency_key).in_(keys))
    return {(job.owner_id, job.idempotency_key or ""): job for job in session.scalars(query)}
