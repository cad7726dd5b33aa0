"""`apot run` on a machine with nothing installed: one command brings up broker, worker and web; Ctrl-C ends all."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import psutil

from tests.html import one, parse
from tests.processes import apot_env, free_port, start_apot, stop

GENTOO = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}
FIRST_ADMIN = "No users yet, so an admin was made."


def wait_for_banner(process: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if line.startswith("apot is running at "):
                return line.split()[4]
        assert process.poll() is None, f"apot run exited with {process.returncode}:\n{log.read_text()[-4000:]}"
        time.sleep(0.1)
    raise AssertionError(f"no 'apot is running' line within {timeout} s:\n{log.read_text()[-4000:]}")


def printed_password(output: str) -> str:
    """The first admin's password: the first non-blank line after the announcement."""
    lines = output.splitlines()
    announced = next(i for i, line in enumerate(lines) if FIRST_ADMIN in line)
    return next(line.strip() for line in lines[announced + 1 :] if line.strip())


def sign_in(browser: httpx2.Client, name: str, password: str) -> None:
    """Sign in through the real login form, as a person would: the form's CSRF token, then the POST."""
    form = parse(browser.get("login").text)
    token = str(one(form, "form[action$='/login'] input[name=csrf_token]")["value"])
    signed_in = browser.post("login", data={"name": name, "password": password, "csrf_token": token})
    assert signed_in.status_code == 303, signed_in.text


def create_key(user: str, env: dict[str, str], cwd: Path) -> str:
    """`apot keys create USER` on the same var/ as the server; the key is its last line."""
    command = [sys.executable, "-m", "webapp.cli", "keys", "create", user]
    created = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=True)
    return created.stdout.splitlines()[-1]


def test_run_serves_jobs_and_ctrl_c_stops_every_child(tmp_path: Path) -> None:
    # Every other setting at its default: SQLite and models under var/ of the instance, here tmp_path.
    env = apot_env(port=str(free_port()), home=str(tmp_path))
    log = tmp_path / "run.log"

    first = start_apot(["run"], env, log, cwd=tmp_path)
    try:
        url = wait_for_banner(first, log)
        children = psutil.Process(first.pid).children(recursive=True)
        assert len(children) >= 3, "broker, worker and web should all be running"
        assert httpx2.get(f"{url}jobs", timeout=10).status_code == 303, "pages need a sign-in"
        with httpx2.Client(base_url=url, timeout=10) as browser:
            sign_in(browser, "admin", printed_password(log.read_text()))
            assert browser.get("jobs").status_code == 200
        auth = {"Authorization": f"Bearer {create_key('admin', env, tmp_path)}"}
        body = {"model": "penguins", "inputs": GENTOO}
        created = httpx2.post(f"{url}api/v1/jobs", json=body, headers=auth, timeout=10).json()
        job = httpx2.get(created["url"], params={"wait": 30}, headers=auth, timeout=40).json()
        assert job["status"] == "succeeded", job
        assert (tmp_path / "var" / "apot.db").exists() and (tmp_path / "var" / "models" / "penguins").is_dir()
    finally:
        code = stop(first, signal.SIGINT)  # what Ctrl-C sends to the foreground process

    assert code == 0, log.read_text()[-4000:]
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    first_output = log.read_text()
    assert "trained the demo model penguins" in first_output
    assert "trained the demo model diabetes" in first_output
    assert first_output.count(FIRST_ADMIN) == 1, "the password is printed once, not by each process"

    # A second start reuses the database, the model and the broker's data.
    log.write_text("")
    second = start_apot(["run"], env, log, cwd=tmp_path)
    try:
        url = wait_for_banner(second, log)
        assert "trained the demo model" not in log.read_text()
        assert FIRST_ADMIN not in log.read_text(), "the admin's password is shown only on the first start"
        assert printed_password(first_output) not in log.read_text()
        assert httpx2.get(created["url"], headers=auth, timeout=10).json()["status"] == "succeeded"
    finally:
        assert stop(second, signal.SIGINT) == 0


def test_run_refuses_a_folder_whose_broker_is_already_running(tmp_path: Path) -> None:
    env = apot_env(port=str(free_port()), home=str(tmp_path))
    log = tmp_path / "run.log"
    first = start_apot(["run"], env, log, cwd=tmp_path)
    try:
        wait_for_banner(first, log)
        second_log = tmp_path / "second.log"
        second = start_apot(["run"], apot_env(port=str(free_port()), home=str(tmp_path)), second_log, cwd=tmp_path)
        assert second.wait(60) != 0
        assert "another `apot run`" in second_log.read_text()
    finally:
        stop(first, signal.SIGINT)


def test_run_on_a_taken_port_says_so_in_one_line_before_starting_anything(tmp_path: Path) -> None:
    with socket.socket() as other_server:
        other_server.bind(("127.0.0.1", 0))
        other_server.listen()
        port = other_server.getsockname()[1]
        command = [sys.executable, "-m", "webapp.cli", "run"]
        env = apot_env(port=str(port), home=str(tmp_path))
        result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"apot cannot start: port {port} on 127.0.0.1 is already in use (another apot or server?): "
        "stop it or set APOT_PORT"
    ]
    assert "running" not in result.stdout
    assert not (tmp_path / "var").exists(), "nothing was started or created"
