"""The checks `apot run` makes before it starts anything."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from ml.demo import DEMOS
from webapp.cli.startup import DEMO_NAMES, port_problem


def test_the_light_demo_check_names_every_demo() -> None:
    assert tuple(DEMOS) == DEMO_NAMES


def test_a_port_another_server_listens_on_is_a_problem_and_a_free_one_is_not() -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        assert "already in use" in (port_problem("127.0.0.1", port) or "")
    assert port_problem("127.0.0.1", port) is None


# What `apot web` does before it serves: import the command, build the app, run its lifespan's start-up.
WEB_START = """
import asyncio, json, sys
import webapp.cli.main
from webapp.main import create_app

async def start_and_stop(app):
    async with app.router.lifespan_context(app):
        pass

asyncio.run(start_and_stop(create_app()))
print(json.dumps(sorted(name for name in ("sklearn", "scipy", "pandas") if name in sys.modules)))
"""


def test_the_web_server_starts_without_importing_scikit_learn_scipy_or_pandas(tmp_path: Path) -> None:
    # They cost seconds of a warm `apot run` (the worker imports them anyway, on another core); the web server needs
    # them only to add a model or read a CSV chunk, and imports them there.
    env = {k: v for k, v in os.environ.items() if not k.startswith("APOT_")}
    env.update(APOT_HOME=str(tmp_path), APOT_BROKER_URL="memory://")
    started = subprocess.run(
        [sys.executable, "-c", WEB_START], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(started.stdout.splitlines()[-1]) == []
