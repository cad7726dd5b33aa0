"""Settings, read from APOT_* environment variables (or a .env file) once per process."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

VAR_DIR = Path("var")
# The folder apot's code runs from; a source checkout (or the image's /app) has its pyproject.toml there.
CHECKOUT = Path(__file__).resolve().parent.parent
SQLITE_PREFIX = "sqlite:///"


# Seconds between a task's soft time limit (it fails its job itself) and the hard one (its process is killed).
HARD_LIMIT_MARGIN_SECONDS = 10
# And past that, before the reconciler takes a job back from a worker that says nothing.
LEASE_MARGIN_SECONDS = 5


class Settings(BaseSettings):
    """Every field is documented in the README's configuration table (a test checks it)."""

    model_config = SettingsConfigDict(env_prefix="APOT_", env_file=".env", extra="ignore")

    home: Path | None = Field(
        default=None,
        description="Folder that relative paths (the default var/...) are resolved against. Unset: the checkout "
        "apot runs from, so every `apot` command finds the same instance from any folder.",
    )
    database_url: str = Field(
        default=f"sqlite:///{VAR_DIR}/apot.db",
        description="SQLAlchemy URL of the job database; postgresql+psycopg://... in production.",
    )
    broker_url: str = Field(
        default="",
        description="Celery broker (redis://... or amqp://...). Empty: `apot run` starts an embedded Redis.",
    )
    models_dir: Path = Field(
        default=VAR_DIR / "models",
        description="Folder of the model store; shared by the web server and every worker.",
    )
    host: str = Field(default="127.0.0.1", description="Address the web server listens on.")
    port: int = Field(default=8000, description="Port the web server listens on.")
    queue: str = Field(
        default="apot",
        description="Celery queue of interactive jobs (forms, JSON); CSV chunks go to `<queue>.bulk` and "
        "webhooks to `<queue>.webhooks`.",
    )
    worker_concurrency: int = Field(default=0, description="Worker processes per `apot worker`; 0 = one per CPU.")
    web_processes: int = Field(
        default=1,
        ge=1,
        description="Server processes per `apot web` (its --workers wins). More take more jobs/s from many clients "
        "at once, at more CPU per job; each may open up to 32 database connections.",
    )
    max_json_rows: int = Field(default=1000, description="Most rows one JSON job may carry.")
    max_body_bytes: int = Field(default=2 * 1024 * 1024, description="Largest JSON request body, in bytes.")
    max_upload_mb: int = Field(default=500, description="Largest CSV upload, in MiB (1 MiB = 1,048,576 bytes).")
    max_csv_rows: int = Field(default=10_000_000, ge=1, description="Most data rows one CSV upload may have.")
    max_csv_columns: int = Field(default=1000, ge=1, description="Most columns one CSV upload may have.")
    max_csv_field_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Longest single field (cell) of a CSV upload, in characters."
    )
    max_form_fields: int = Field(
        default=200, ge=10, description="Most fields one form or multipart upload may have (files: one)."
    )
    csv_chunk_rows: int = Field(default=20_000, description="Rows per chunk of a CSV job; each chunk is one task.")
    csv_chunks_in_flight: int = Field(
        default=8,
        ge=1,
        description="Chunks of one CSV job in the queue or being scored at once; the rest wait their turn.",
    )
    batch_max_rows: int = Field(
        default=256,
        ge=1,
        description="Most rows of small jobs that travel in one task message, and that a worker claims and scores "
        "with one model call.",
    )
    batch_wait_ms: float = Field(
        default=2.0,
        ge=0,
        description="How long a group of small jobs waits for more while other submissions are arriving, in ms.",
    )
    allow_model_uploads: bool = Field(
        default=True, description="Whether admins may add .skops model files from the dashboard."
    )
    model_cache_size: int = Field(
        default=8, description="Models each worker process keeps loaded (least recently used out)."
    )
    task_time_limit: int = Field(default=120, description="Seconds a scoring task may run before it is failed.")
    max_attempts: int = Field(
        default=3, ge=1, description="Times a job is started before a vanished worker fails it with worker_lost."
    )
    reconcile_seconds: float = Field(
        default=5.0, gt=0, description="How often the reconciler looks for lost, stuck and unpublished work."
    )
    republish_after_seconds: float = Field(
        default=120.0,
        gt=0,
        description="A queued job whose task reached the broker this long ago without being started is published "
        "again (a broker restart or flush may have lost it).",
    )
    worker_metrics_port: int = Field(
        default=0,
        description="Port on which `apot worker` serves its processes' metrics (model load times) for Prometheus, "
        "on all interfaces; 0 = off.",
    )
    result_ttl_days: int = Field(
        default=0,
        ge=0,
        description="Days the inputs and results of an ended job are kept; then the reconciler (or `apot prune`) "
        "deletes them and keeps the rest of the job. 0 = keep forever.",
    )
    log_level: str = Field(default="INFO", description="Log level of web server and workers.")
    task_events: bool = Field(
        default=True,
        description="Celery task events (for Flower); off saves four broker messages per task. Flower switches "
        "them on in running workers when it starts.",
    )
    log_format: Literal["json", "text"] | None = Field(
        default=None,
        description="Log lines as JSON objects or as text. Unset: text when stderr is a terminal, JSON otherwise.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Signs sessions and CSRF tokens. Unset on a laptop: made once, kept in var/secret_key; "
        "production (Postgres, or a host other than loopback) refuses to start without it.",
    )
    session_hours: float = Field(default=168.0, gt=0, description="How long a sign-in lasts, in hours.")
    rate_limit_per_user: str = Field(
        default="120000/minute",
        description="Most jobs one user may create (API and pages), e.g. 50/second; empty: no limit. The default is "
        "above what one web process can take in, so it stops a runaway loop, never a script that waits for answers.",
    )
    rate_limit_per_key: str = Field(
        default="60000/minute", description="Most jobs one API key may create; empty: no limit."
    )
    public_url: str = Field(
        default="",
        description="Base URL clients reach this server at, for the links in webhook payloads. "
        "Empty: http://HOST:PORT.",
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Key of the HMAC-SHA256 signature on webhooks. Unset: derived from the server secret "
        "(`apot webhook-secret` prints it).",
    )
    trusted_proxies: str = Field(
        default="",
        description="Addresses (comma-separated IPs or networks, or *) of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed. Empty: none, not even 127.0.0.1.",
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="Accept callback URLs whose host resolves to a private, loopback or link-local address.",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long one webhook delivery may take (connect and answer), in seconds."
    )
    webhook_retry_seconds: str = Field(
        default="10,30,90,270",
        description="Pauses before each retry of a failed webhook delivery, in seconds, comma-separated; "
        "one attempt more than pauses.",
    )
    tracking: bool = Field(
        default=True,
        description="Workers count the features of the rows they score, per model version and day, for drift; "
        "false: they skip it.",
    )

    @model_validator(mode="after")
    def _anchor_relative_paths(self) -> Settings:
        """`var/apot.db` and `var/models` mean the instance's var/, not one wherever a command happens to run (a
        stray empty database there would answer "no such table")."""
        home = self.instance_dir
        if not self.models_dir.is_absolute():
            self.models_dir = home / self.models_dir
        path = self.database_url.removeprefix(SQLITE_PREFIX)
        if self.database_url.startswith(SQLITE_PREFIX) and path and not path.startswith((":", "/")):
            self.database_url = f"{SQLITE_PREFIX}{home / path}"
        return self

    @property
    def instance_dir(self) -> Path:
        if self.home is not None:
            return self.home.resolve()
        return CHECKOUT if (CHECKOUT / "pyproject.toml").is_file() else Path.cwd()

    @property
    def var_dir(self) -> Path:
        """Where the embedded stack keeps its broker's files and the made-up server secret."""
        return self.instance_dir / VAR_DIR

    @field_validator("webhook_retry_seconds")
    @classmethod
    def _pauses(cls, value: str) -> str:
        parse_pauses(value)
        return value

    @property
    def webhook_pauses(self) -> tuple[float, ...]:
        return parse_pauses(self.webhook_retry_seconds)

    @property
    def webhook_max_attempts(self) -> int:
        return len(self.webhook_pauses) + 1

    @property
    def is_production(self) -> bool:
        """A Postgres database or a server reachable from other machines: where a secret made per machine breaks
        sessions and webhook signatures between machines."""
        return self.database_url.startswith("postgresql") or self.host not in ("127.0.0.1", "localhost", "::1")

    @property
    def bulk_queue(self) -> str:
        """CSV chunks: served only when no interactive job waits."""
        return f"{self.queue}.bulk"

    @property
    def webhook_queue(self) -> str:
        """Webhook deliveries: served by threads of their own, never by a scoring process."""
        return f"{self.queue}.webhooks"

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def lease_seconds(self) -> float:
        """How long a worker's claim holds: past the hard time limit of any task, so a live worker never loses one."""
        return self.task_time_limit + HARD_LIMIT_MARGIN_SECONDS + LEASE_MARGIN_SECONDS


def parse_pauses(text: str) -> tuple[float, ...]:
    """ "10,30,90" as seconds; empty means no retries."""
    pauses = tuple(float(part) for part in text.split(",") if part.strip())
    if any(pause < 0 for pause in pauses):
        raise ValueError("pauses cannot be negative")
    return pauses


@lru_cache
def get_settings() -> Settings:
    return Settings()
