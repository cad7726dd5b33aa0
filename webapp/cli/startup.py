"""What `apot run` checks before it starts anything, each cheap enough for a warm start of a few seconds."""

from __future__ import annotations

import errno
import socket

from webapp.config import Settings

# The names of ml/demo.py's DEMOS (a test checks): a warm start asks the database whether they are registered without
# importing scikit-learn, which costs seconds.
DEMO_NAMES = ("penguins", "diabetes")


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
