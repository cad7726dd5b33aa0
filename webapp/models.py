"""ORM models: the job row is the source of truth for every page and API answer."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite keeps no zone, so it is restored on read)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: use datetime.now(UTC)")
        return value.astimezone(UTC) if dialect.name != "sqlite" else value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def ended(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class JobKind(enum.StrEnum):
    SINGLE = "single"
    BATCH = "batch"
    CSV = "csv"
    V2 = "v2"  # an Open Inference Protocol request: scored like a batch, answered in the protocol's shape
    EXPLAIN = "explain"  # what moves a single-row job's prediction (services/tracking/explanations.py)


class ChunkStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"


UNPRUNED = "finished_at IS NOT NULL AND pruned_at IS NULL"


class Job(Base):
    """One request for predictions, from creation to its result.

    inputs and result are JSON, not JSONB: JSONB reorders object keys, and the order of features and classes
    is part of what clients read.
    """

    __tablename__ = "jobs"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED)
    model_name: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(64))
    task_id: Mapped[str] = mapped_column(String(64))
    inputs: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    rows_total: Mapped[int]
    rows_done: Mapped[int] = mapped_column(default=0, server_default="0")
    rows_failed: Mapped[int] = mapped_column(default=0, server_default="0")
    # A CSV job's file: name, columns, delimiter and what to do with bad rows. Its rows live in job_chunks.
    upload: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # The job whose inputs this one re-ran on another model version, to compare the two.
    compare_to: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("jobs.id", ondelete="SET NULL"), default=None)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    attempts: Mapped[int] = mapped_column(default=0)
    worker: Mapped[str | None] = mapped_column(String(255), default=None)
    # Until when the worker that claimed the job is trusted to be at it; past it, the reconciler takes it back.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # When its task last reached the broker; none yet means the publish is pending (the reconciler retries it).
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # A client's Idempotency-Key: a retried submission with the same key (from the same user) gets this job back.
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    # Who made the job, and with which API key (none: from the dashboard). Jobs from before accounts have no owner;
    # only admins see them.
    owner_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"), default=None)
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("api_keys.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Where the job is POSTed when it ends (a webhook): checked when submitted and again before each delivery.
    callback_url: Mapped[str | None] = mapped_column(String(2048), default=None)
    # Delivery attempts of the webhook so far, and when the next one is due: set by the commit that ends the job,
    # pushed forward while an attempt runs or waits for its retry, cleared once delivered or given up.
    webhook_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    webhook_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # When retention (APOT_RESULT_TTL_DAYS) deleted its inputs and results; the rest of the row is kept.
    pruned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    __table_args__ = (
        # The reconciler looks for webhooks long overdue (never published, or lost with a worker).
        Index(None, "webhook_due_at"),
        # History pages and /api/v1/jobs walk these newest first, keyset-paginated on (created_at, id).
        Index(None, "created_at", "id"),
        Index(None, "status", "created_at", "id"),
        Index(None, "model_name", "created_at", "id"),
        # A member's history: their jobs only, walked the same way.
        Index(None, "owner_id", "created_at", "id"),
        # Keys are the user's own: two users may pick the same one.
        UniqueConstraint("owner_id", "idempotency_key"),
        # /metrics reads only the jobs that ended since its last scrape (webapp/metrics/jobs.py).
        Index(None, "finished_at"),
        # What pruning looks for: ended, not yet pruned, oldest first. Partial, so it holds only the jobs still to
        # prune: a pass never walks again over the ones it pruned before.
        Index(
            "ix_jobs_unpruned_finished_at", "finished_at", sqlite_where=text(UNPRUNED), postgresql_where=text(UNPRUNED)
        ),
    )


# The table itself, for Core statements over many rows: none of the unit of work's bookkeeping per row.
jobs_table = cast(Table, Job.__table__)


class JobChunk(Base):
    """A slice of a CSV job's rows: scored by whichever worker claims it, on any machine."""

    __tablename__ = "job_chunks"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    position: Mapped[int]
    first_row: Mapped[int]  # 1-based number of the chunk's first data row in the file, for error messages
    status: Mapped[str] = mapped_column(String(16), default=ChunkStatus.QUEUED)
    task_id: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int]
    # zlib-compressed CSV text of the rows as the file had them, without the header (the job's upload holds
    # the columns and the delimiter).
    input: Mapped[bytes] = mapped_column(LargeBinary)
    # Rows found broken while reading the file (wrong number of fields), by offset in the chunk.
    problems: Mapped[dict[str, str] | None] = mapped_column(JSON, default=None)
    # The scored chunk (ml.table.ChunkResult.to_bytes), written once by the worker that scored it.
    result: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    rows_failed: Mapped[int] = mapped_column(default=0)
    attempts: Mapped[int] = mapped_column(default=0)
    worker: Mapped[str | None] = mapped_column(String(255), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    # One chunk per position: a job's chunks are read back in this order, and a duplicate cannot be stored.
    __table_args__ = (UniqueConstraint("job_id", "position"),)


class WebhookDelivery(Base):
    """One attempt to POST an ended job to its callback_url, whatever came of it."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    attempt: Mapped[int]
    url: Mapped[str] = mapped_column(String(2048))
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    duration_ms: Mapped[float] = mapped_column(Float)

    # One row per attempt number: a redelivered task cannot record the same attempt twice.
    __table_args__ = (UniqueConstraint("job_id", "attempt"),)


class RegisteredModel(Base):
    """One version of a model: what it takes and returns, and the file (by sha256) that must be loaded for it.

    Every web and worker process reads this table, so a version registered or made default anywhere is seen
    everywhere at once. One version per name is the default.
    """

    __tablename__ = "models"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    task: Mapped[str] = mapped_column(String(16))
    features: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    classes: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    # A multi-output model's targets in order, [{"name", "classes"}]; None for a model with one target.
    targets: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=None)
    # skops types outside its default trusted set that an admin trusted for this file when adding it.
    trusted_types: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int]
    sklearn_version: Mapped[str] = mapped_column(String(32))
    file_format: Mapped[str] = mapped_column(String(8))
    is_default: Mapped[bool] = mapped_column(default=False)
    # Per feature, what scored rows are compared with for drift (ml.drift; older versions: none, from the schema).
    reference: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("name", "version"),)


class Role(enum.StrEnum):
    ADMIN = "admin"  # sees every job, manages models and users
    MEMBER = "member"  # sees only their own jobs


class User(Base):
    """A person who signs in to the dashboard, and owns jobs and API keys."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=Role.MEMBER)
    disabled: Mapped[bool] = mapped_column(default=False)
    # Part of every session cookie: raising it (new password, disabled, signed out everywhere) ends old sessions.
    session_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class ApiKey(Base):
    """A secret a script sends as `Authorization: Bearer ...`; only its sha256 is stored, the key is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    # The key's public start, shown in lists so a user can tell their keys apart, and the index it is found by.
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Written when a lookup finds it older than a minute (accounts.py): to the minute, never once per request.
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
