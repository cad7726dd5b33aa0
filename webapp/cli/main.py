"""The `apot` command: run everything on one machine, or each part on its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from webapp.cli.accounts import announce_first_admin, keys_cli, users_cli
from webapp.cli.models import models_cli
from webapp.cli.predict import outcomes, predict
from webapp.cli.startup import run
from webapp.config import Settings, get_settings

# How long `apot web --workers N` gives each server process to start before counting it as hung.
WEB_WORKER_START_SECONDS = 60
# Webhook deliveries one `apot worker` makes at once: each waits on a receiver, at most APOT_WEBHOOK_TIMEOUT_SECONDS.
WEBHOOK_THREADS = 8

cli = typer.Typer(help="apot: a dashboard and JSON API for scikit-learn predictions.", no_args_is_help=True)
cli.add_typer(models_cli, name="models")
cli.add_typer(users_cli, name="users")
cli.add_typer(keys_cli, name="keys")
cli.command()(predict)
cli.command()(outcomes)
cli.command()(run)


@cli.command()
def migrate() -> None:
    """Create or upgrade the database schema (Alembic) to the newest revision."""
    from webapp.logs import setup_logging
    from webapp.migrate import upgrade_to_head

    setup_logging(get_settings())
    upgrade_to_head(get_settings().database_url)
    typer.echo("database is at the newest schema")


@cli.command("train-demo")
def train_demo() -> None:
    """Train and register the demo models (penguins, diabetes), unless they are already registered."""
    from webapp.services.models import ensure_demos, open_registry

    with open_registry(get_settings()) as registry:
        trained = ensure_demos(registry)
    for info in trained:
        typer.echo(f"trained {info.name} {info.version}")
    if not trained:
        typer.echo("the demo models are already registered")


def require_secret(settings: Settings) -> None:
    """Exit with how to make APOT_SECRET_KEY when a production server would start without it."""
    from webapp.http.security import MissingSecret, server_secret

    try:
        server_secret(settings)
    except MissingSecret as exc:
        typer.echo(f"apot: {exc}", err=True)
        raise typer.Exit(2) from exc


@cli.command()
def web(
    workers: Annotated[int, typer.Option(help="Web server processes; default APOT_WEB_PROCESSES.")] = 0,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = True,
) -> None:
    """Serve the pages and the JSON API on APOT_HOST:APOT_PORT."""
    import uvicorn

    from webapp.logs import log_config

    settings = get_settings()
    require_secret(settings)
    announce_first_admin(f"http://{settings.host}:{settings.port}")
    uvicorn.run(
        "webapp.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        # One by default: on 2 CPUs, two took ~20% more jobs/s from 64 clients but ~13% fewer from 8 (each groups
        # only what it receives) and ~20% more CPU per job (`make bench PARTS=peers`, issue 19's closing note).
        workers=workers or settings.web_processes,
        # Named, not left to "auto": without them uvicorn silently falls back to pure-Python parsing and asyncio's
        # own loop, and each request costs noticeably more CPU.
        loop="uvloop",
        http="webapp.http.server_protocol:BoundedHeadProtocol",  # httptools, with a bound on the headers' size
        # X-Forwarded-For and -Proto are believed only from the proxies named: uvicorn's default believes any
        # process on 127.0.0.1, so anyone reaching apot there could pick the address the sign-in limits count.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or None,
        access_log=access_log,
        log_level=settings.log_level.lower(),
        log_config=log_config(settings),  # applied again in each worker process uvicorn starts
        # uvicorn kills a worker process not serving within this (5 s by default): importing pandas, scikit-learn
        # and Celery takes longer than that on a busy or small machine, and the processes were restarted forever.
        timeout_worker_healthcheck=WEB_WORKER_START_SECONDS,
    )


@cli.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Processes; default APOT_WORKER_CONCURRENCY.")] = 0,
    name: Annotated[str, typer.Option(help="Celery node name; must be unique per machine.")] = "apot@%h",
    beat: Annotated[
        bool,
        typer.Option(help="Also run the reconciler (lost jobs, publishing, retention), as `apot reconciler` does."),
    ] = False,
    ready_file: Annotated[Path | None, typer.Option(hidden=True)] = None,
) -> None:
    """Score jobs from the broker at APOT_BROKER_URL, one model load per process; a worker that dies is started
    again. With --ready-file (`apot run`), the scoring node creates that file once it takes jobs, and the webhook
    threads start only then, so that they do not slow it down."""
    from webapp.cli.supervisor import keep_running
    from webapp.logs import setup_logging
    from webapp.metrics.worker import exporting

    settings = get_settings()
    require_secret(settings)
    setup_logging(settings)
    env = dict(os.environ)
    # Processes of their own, not threads: Celery forks its pool from the process it runs in.
    celery = [sys.executable, "-m", "webapp.cli", "celery-worker"]
    commands = {
        # Interactive jobs first, then CSV chunks, in processes that score.
        "worker": [
            *celery,
            f"--concurrency={concurrency}",
            f"--name={name}",
            "--queues=scoring",
            *([f"--ready-file={ready_file}"] if ready_file else []),
        ],
        # Webhooks wait on other people's servers: threads of their own, so a slow receiver holds no scoring process.
        "webhooks": [
            *celery,
            f"--concurrency={WEBHOOK_THREADS}",
            f"--name={webhook_node_name(name)}",
            "--queues=webhooks",
        ],
    }
    reconciler = subprocess.Popen([sys.executable, "-m", "webapp.cli", "reconciler"], env=env) if beat else None
    try:
        with exporting(settings.worker_metrics_port, env):  # the Celery processes' metrics, summed
            start_when = {"webhooks": ready_file.exists} if ready_file else None
            raise typer.Exit(keep_running(commands, env, start_when))
    finally:
        if reconciler is not None:
            reconciler.terminate()
            reconciler.wait()


def webhook_node_name(name: str) -> str:
    """The Celery node name of the webhook threads beside the scoring node `name` (apot@%h → apot-webhooks@%h)."""
    node, at, host = name.partition("@")
    return f"{node}-webhooks{at}{host}"


@cli.command("celery-worker", hidden=True)
def celery_worker(
    concurrency: int = 0, name: str = "apot@%h", queues: str = "scoring", ready_file: Path | None = None
) -> None:
    """The Celery worker itself, as `apot worker` runs (and restarts) it: `scoring` (interactive jobs, then CSV
    chunks, in processes) or `webhooks` (in threads); `ready_file` is created once it takes jobs."""
    from celery import signals

    from ml.predict import import_scoring_libraries
    from tasks.app import create_celery
    from webapp.logs import choose_format, setup_logging

    settings = get_settings()
    setup_logging(settings)  # now, for what Celery says before its setup_logging signal (which applies it again)
    if queues == "scoring":
        import_scoring_libraries()  # once, before the pool forks, rather than in each process at its first job
    if ready_file is not None:
        signals.worker_ready.connect(lambda **_: ready_file.touch(), weak=False)
    processes = concurrency or settings.worker_concurrency or os.cpu_count() or 1
    # Celery's start-up banner is plain text on stdout: left out where every line must be JSON.
    quiet = ["--quiet"] if choose_format(settings.log_format, sys.stderr) == "json" else []
    create_celery(settings).worker_main(
        [
            *quiet,  # an option of `celery`, not of `celery worker`
            "worker",
            f"--loglevel={settings.log_level}",
            *(
                [f"--concurrency={processes}", f"--queues={settings.queue},{settings.bulk_queue}"]
                if queues == "scoring"
                else [f"--concurrency={concurrency}", f"--queues={settings.webhook_queue}", "--pool=threads"]
            ),
            f"--hostname={name}",
            # Mingle asks every other worker for its revoked ids at start-up; we revoke nothing and it adds seconds.
            "--without-mingle",
        ]
    )


@cli.command()
def reconciler() -> None:
    """Every APOT_RECONCILE_SECONDS: take back jobs whose worker vanished, publish what the broker never got or
    lost; every 10 minutes, prune old results (APOT_RESULT_TTL_DAYS). Run one or more anywhere (they never publish
    a job twice); `apot run` and `apot worker --beat` start one."""
    from tasks.app import create_celery
    from tasks.publish import celery_enqueue
    from webapp.background.reconciler import Reconciler, ReconcilerSettings
    from webapp.background.retention import Pruner
    from webapp.db import BACKGROUND_STATEMENT_TIMEOUT_SECONDS, make_engine, make_session_factory
    from webapp.logs import setup_logging
    from webapp.services.tracking.summaries import Compactor
    from webapp.services.webhooks import job_end_announcer

    settings = get_settings()
    setup_logging(settings)
    engine = make_engine(settings.database_url, statement_timeout=BACKGROUND_STATEMENT_TIMEOUT_SECONDS)
    sessions = make_session_factory(engine)
    enqueue = celery_enqueue(create_celery(settings, publisher=True))
    Reconciler(
        sessions,
        enqueue,
        job_end_announcer(settings, enqueue),
        ReconcilerSettings(
            settings.max_attempts,
            settings.republish_after_seconds,
            settings.batch_max_rows,
            webhook_attempts=settings.webhook_max_attempts,
            chunks_in_flight=settings.csv_chunks_in_flight,
        ),
        pruner=Pruner(sessions, settings.result_ttl_days),
        compactor=Compactor(sessions),
    ).run_forever(settings.reconcile_seconds)


@cli.command("webhook-secret")
def webhook_secret() -> None:
    """Print the key webhooks are signed with, for the people whose receivers verify them."""
    from webapp.services.webhooks import webhook_secret as secret_of

    typer.echo(secret_of(get_settings()).decode())


@cli.command()
def prune(
    older_than_days: Annotated[
        int | None, typer.Option(min=1, help="Age in days past which to prune; default APOT_RESULT_TTL_DAYS.")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Only count what would be deleted.")] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Jobs per transaction.")] = 1000,
) -> None:
    """Delete the inputs and results of jobs that ended long ago, keeping the job rows (the reconciler does this
    every 10 minutes when APOT_RESULT_TTL_DAYS is set)."""
    from webapp.background.retention import Pruner
    from webapp.db import make_engine, make_session_factory

    settings = get_settings()
    engine = make_engine(settings.database_url)
    try:
        pruner = Pruner(make_session_factory(engine), settings.result_ttl_days, batch_size=batch_size)
        report = pruner.prune(older_than_days=older_than_days, dry_run=dry_run)
    finally:
        engine.dispose()
    if report is None:
        typer.echo(
            "retention is off (APOT_RESULT_TTL_DAYS=0): nothing pruned; pass --older-than-days N to prune anyway"
        )
        return
    typer.echo(report)


def main() -> None:
    cli()
