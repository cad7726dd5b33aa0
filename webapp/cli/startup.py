"""`apot run`: the checks it makes before it starts anything, each cheap enough for a warm start of a few seconds, and
the order it starts its children in."""

from __future__ import annotations

import errno
import os
import socket
import sys
import tempfile
from pathlib import Path

import typer

from webapp.config import Settings, get_settings

# The names of ml/demo.py's DEMOS (a test checks): a warm start asks the database whether they are registered without
# importing scikit-learn, which costs seconds.
DEMO_NAMES = ("penguins", "diabetes")


def run() -> None:
    """Everything on this machine: migrate, train the demo if missing, start broker, worker and web server."""
    from webapp.cli.accounts import announce_first_admin
    from webapp.cli.embedded_broker import EmbeddedRedis
    from webapp.cli.supervisor import READY_TIMEOUT_SECONDS, Supervisor
    from webapp.logs import setup_logging
    from webapp.migrate import upgrade_if_behind

    settings = get_settings()
    if problem := port_problem(settings.host, settings.port):
        typer.echo(f"apot cannot start: {problem}", err=True)
        raise typer.Exit(1)
    setup_logging(settings, level="WARNING")  # this process's own lines; its children log at APOT_LOG_LEVEL
    env = dict(os.environ)
    base = f"http://{settings.host}:{settings.port}"
    supervisor = Supervisor()
    supervisor.handle_signals()
    exit_code = 1
    with tempfile.TemporaryDirectory(prefix="apot-run-") as run_dir:
        worker_ready = Path(run_dir) / "worker-ready"
        try:
            if not settings.broker_url:
                broker = EmbeddedRedis(settings.var_dir)
                supervisor.adopt("broker", broker.start())
                env["APOT_BROKER_URL"] = broker.url
            # Before any child: the worker must not score on an old schema, nor the web make its first admin in
            # tables not there yet. At the newest schema already (a warm start), this is one query.
            upgrade_if_behind(settings.database_url)
            # Web and worker import their libraries at once (seconds each, on a core each) while the admin and the
            # demos are checked; the reconciler (no job waits on it) and the webhook threads follow once they serve.
            supervisor.spawn("web", [sys.executable, "-m", "webapp.cli", "web"], env)
            worker = [sys.executable, "-m", "webapp.cli", "worker", f"--ready-file={worker_ready}"]
            supervisor.spawn("worker", worker, env)
            announce_first_admin(base)  # the web server tries too (for `apot web`): one of them makes it and says so
            if demos_missing(settings):
                from webapp.services.models import ensure_demos, open_registry

                with open_registry(settings) as registry:
                    for info in ensure_demos(registry):
                        typer.echo(f"trained the demo model {info.name}")
            # Ready is what a person can do with it: /readyz answers 200 (database at the schema, broker, intake)
            # and a worker takes jobs, so a job submitted now is scored.
            if supervisor.wait_until_ready(f"{base}/readyz", worker_ready.exists):
                typer.echo(f"\napot is running at {base}/  (API docs: {base}/docs). Ctrl-C stops it.\n")
                supervisor.spawn("reconciler", [sys.executable, "-m", "webapp.cli", "reconciler"], env)
                exit_code = supervisor.watch()
            elif supervisor.stopping:
                exit_code = 0
            elif supervisor.dead_child() is None:
                missing = [] if worker_ready.exists() else ["no worker took jobs"]
                missing += [] if supervisor.answers(f"{base}/readyz") else [f"{base}/readyz did not answer 200"]
                typer.echo(f"apot did not start in {READY_TIMEOUT_SECONDS} s: {' and '.join(missing)}", err=True)
        finally:
            supervisor.stop_all()
    raise typer.Exit(exit_code)


def port_problem(host: str, port: int) -> str | None:
    """Why the web server could not listen on host:port (another server holds it, or it is not ours to take), or
    None. Binds as uvicorn does (SO_REUSEADDR), so a port in TIME_WAIT after a restart is free."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is already in use (another apot or server?): stop it or set APOT_PORT"
            return f"cannot listen on {host}:{port}: {exc.strerror} (check APOT_HOST and APOT_PORT)"
    return None


def demos_missing(settings: Settings) -> bool:
    """Whether a demo model is not registered yet (then `ensure_demos` trains it)."""
    from sqlalchemy import select

    from webapp.db import make_engine
    from webapp.models import RegisteredModel

    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            query = select(RegisteredModel.name).where(RegisteredModel.name.in_(DEMO_NAMES)).distinct()
            return len(connection.scalars(query).all()) < len(DEMO_NAMES)
    finally:
        engine.dispose()
