"""Servers of a test's own that it may hang: a Postgres cluster (initdb on a free port) and a TCP proxy."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from pathlib import Path

import psutil
import pytest

from tests.processes import free_port

POSTGRES_BINARIES = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


class PrivatePostgres:
    """A throwaway cluster: trust authentication on 127.0.0.1, nothing kept after the test."""

    def __init__(self) -> None:
        if not POSTGRES_BINARIES:
            if os.environ.get("CI"):
                raise RuntimeError("the fault tests need Postgres' server binaries (initdb, postgres)")
            pytest.skip("no Postgres server binaries here")
        self.bin = Path(POSTGRES_BINARIES[-1])
        # Not under pytest's tmp_path: as root, the cluster's user could not reach it (those folders are 0700).
        self.root = Path(tempfile.mkdtemp(prefix="apot-fault-pg-")) / "data"
        self.port = free_port()
        # Postgres refuses to run as root: as root (CI containers), the cluster belongs to the postgres user.
        self.user = "postgres" if os.geteuid() == 0 else None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        self.root.mkdir()
        if self.user:
            shutil.chown(self.root.parent, self.user)
            shutil.chown(self.root, self.user)
        subprocess.run(
            [self.bin / "initdb", "-D", self.root, "-A", "trust", "-U", "postgres", "--no-sync"],
            check=True,
            user=self.user,
            stdout=subprocess.DEVNULL,
        )
        self._launch()

    def _launch(self) -> None:
        self.process = subprocess.Popen(
            [
                *(self.bin / "postgres", "-D", self.root, "-p", str(self.port), "-k", self.root),
                *("-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200"),
            ],
            user=self.user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        until_ready = time.monotonic() + 60
        while subprocess.run([self.bin / "pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)]).returncode:
            assert time.monotonic() < until_ready, "the test's Postgres did not start"
            time.sleep(0.2)

    def restart(self) -> None:
        """What `pg_ctl restart -m fast` does: every connection is closed, the same data comes back on the same port."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)  # fast shutdown: open transactions roll back
        self.process.wait(60)
        self._launch()

    def _tree(self) -> list[psutil.Process]:
        assert self.process is not None
        main = psutil.Process(self.process.pid)
        return [main, *main.children(recursive=True)]

    def pause(self) -> None:
        """Every process of the cluster stops: connections stay open, nothing answers (a hung server)."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, signum: int) -> None:
        for process in self._tree():
            with suppress(psutil.NoSuchProcess):  # a backend whose client went away
                process.send_signal(signum)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.resume()
            self.process.send_signal(signal.SIGQUIT)  # immediate shutdown: the data is thrown away anyway
            self.process.wait(30)
        shutil.rmtree(self.root.parent, ignore_errors=True)


class TcpProxy:
    """tests/faults/tcpproxy.py in a process of its own, in front of `target_port`."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.tcpproxy", str(self.port), str(target_port)], stdout=subprocess.PIPE
        )
        assert self.process.stdout is not None and self.process.stdout.readline() == b"listening\n"

    def freeze(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def drop_connections(self) -> None:
        """Every open connection goes silent for good; new ones work."""
        self.process.send_signal(signal.SIGUSR1)

    def stop(self) -> None:
        self.thaw()
        self.process.kill()
        self.process.communicate()
