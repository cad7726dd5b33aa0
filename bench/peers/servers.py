"""Start each peer in its own virtualenv, installed by the bench the first time (var/bench-peers/, reused after),
with the same scikit-learn, numpy, pandas, scipy and joblib as apot's, so that every server loads the one model file
and computes the same thing."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiohttp

from webapp.cli.supervisor import Supervisor

REPO = Path(__file__).resolve().parents[2]
VENVS = REPO / "var" / "bench-peers"
SHARED = ["scikit-learn", "numpy", "pandas", "scipy", "joblib"]
OWN = {
    "fastapi": ["fastapi", "uvicorn[standard]"],
    "bentoml": ["bentoml==1.4.40"],
    "mlflow": ["mlflow==3.17.2"],
}
INSTALL_TIMEOUT_SECONDS = 1800
READY_TIMEOUT_SECONDS = 180

Call = Callable[[aiohttp.ClientSession, list[dict[str, Any]]], Awaitable[None]]


@dataclass(frozen=True)
class Peer:
    name: str
    pids: list[int]  # roots of its process trees, for CPU accounting
    call: Call  # one request scoring these rows, raising unless every row was scored


def requirements(name: str) -> list[str]:
    return [*OWN[name], *(f"{package}=={version(package)}" for package in SHARED)]


def ensure_venv(name: str) -> Path:
    """The peer's virtualenv, installed now unless an earlier run installed the same requirements."""
    venv = VENVS / name
    wanted = "\n".join(requirements(name))
    marker = venv / ".bench-installed"
    if marker.exists() and marker.read_text() == wanted:
        return venv
    print(f"installing {name} into {venv} (once; a few minutes)", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", *requirements(name)],
        check=True,
        timeout=INSTALL_TIMEOUT_SECONDS,
    )
    marker.write_text(wanted)
    return venv


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_peer(name: str, model_file: Path, root: Path) -> Iterator[Peer]:
    """The peer serving `model_file` on a loopback port, until the block ends."""
    venv = ensure_venv(name)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PEER_MODEL": str(model_file), "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)
    env["PYTHONPATH"] = str(REPO)  # for bench.peers.*, which import nothing of apot
    supervisor = Supervisor()
    log = (root / f"{name}.log").open("ab")
    try:
        argv, ready, call = _command(name, venv, model_file, root, base, port, env, log)
        supervisor.spawn(name, argv, env, log)
        _wait_ready(supervisor, base + ready, root / f"{name}.log")
        yield Peer(name, [child.process.pid for child in supervisor.children], call)
    finally:
        supervisor.stop_all()
        log.close()


def _command(
    name: str, venv: Path, model_file: Path, root: Path, base: str, port: int, env: dict[str, str], log: Any
) -> tuple[list[str], str, Call]:
    python = str(venv / "bin" / "python")
    if name == "fastapi":
        argv = [python, "-m", "uvicorn", "bench.peers.fastapi_app:app", "--host", "127.0.0.1", "--port", str(port)]

        async def fastapi_call(session: aiohttp.ClientSession, rows: list[dict[str, Any]]) -> None:
            single = len(rows) == 1
            path, body = ("/predict", rows[0]) if single else ("/predict_batch", rows)
            await _post(session, base + path, body, len(rows), lambda answer: [answer] if single else answer)

        return argv, "/healthz", fastapi_call
    if name == "bentoml":
        service = "bench.peers.bentoml_service:Penguins"
        argv = [str(venv / "bin" / "bentoml"), "serve", service, "--host", "127.0.0.1", "--port", str(port)]

        async def bentoml_call(session: aiohttp.ClientSession, rows: list[dict[str, Any]]) -> None:
            # One row: the endpoint with adaptive batching; many: the plain one, in one call.
            path = "/predict" if len(rows) == 1 else "/predict_many"
            await _post(session, base + path, {"rows": rows}, len(rows), lambda answer: answer)

        return argv, "/readyz", bentoml_call
    if name == "mlflow":
        saved = root / "mlflow-model"
        if not saved.exists():
            subprocess.run(
                [python, "-m", "bench.peers.mlflow_model", str(model_file), str(saved)],
                env=env,
                check=True,
                stdout=log,
                stderr=log,
            )
        argv = [str(venv / "bin" / "mlflow"), "models", "serve", "-m", str(saved), "--env-manager", "local"]
        argv += ["-h", "127.0.0.1", "-p", str(port)]

        async def mlflow_call(session: aiohttp.ClientSession, rows: list[dict[str, Any]]) -> None:
            body = {"dataframe_records": rows}
            await _post(session, base + "/invocations", body, len(rows), lambda answer: answer["predictions"])

        return argv, "/ping", mlflow_call
    raise ValueError(f"no peer named {name}")


async def _post(
    session: aiohttp.ClientSession, url: str, body: object, rows: int, predictions: Callable[[Any], list[Any]]
) -> None:
    async with session.post(url, json=body) as response:
        answer = await response.json(content_type=None)
        if response.status != 200 or len(predictions(answer)) != rows:
            raise RuntimeError(f"{url}: {response.status} {str(answer)[:200]}")


def _wait_ready(supervisor: Supervisor, url: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline and supervisor.dead_child() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer; see {log}")
