"""`apot run`'s children die with it however it ends: killed outright, or told its terminal closed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

# A supervisor with one child, as `apot run` has several; it prints the child's pid, then watches.
SUPERVISOR = """
import sys
from webapp.cli.supervisor import Supervisor
supervisor = Supervisor()
supervisor.handle_signals()
supervisor.spawn("sleeper", [sys.executable, "-c", "import time; time.sleep(120)"], {})
print(supervisor.children[0].process.pid, flush=True)
code = supervisor.watch()
supervisor.stop_all()
sys.exit(code)
"""


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGHUP])
def test_the_children_stop_when_the_supervisor_ends(how: signal.Signals) -> None:
    supervisor = subprocess.Popen([sys.executable, "-c", SUPERVISOR], stdout=subprocess.PIPE)
    assert supervisor.stdout is not None
    child = psutil.Process(int(supervisor.stdout.readline()))
    supervisor.stdout.close()

    supervisor.send_signal(how)
    supervisor.wait(30)

    gone, _ = psutil.wait_procs([child], timeout=30)
    assert gone, f"the child outlived a supervisor ended by {how.name}"


# `apot worker` as `apot run` starts it: the second command (the webhook threads) waits for the first (the scoring
# node) to say it is ready, so that they do not share the cores while the first starts.
IN_ORDER = """
import sys
from pathlib import Path
from webapp.cli.supervisor import keep_running
ready, second = Path(sys.argv[1], "ready"), Path(sys.argv[1], "second")
first = f"import pathlib, time; time.sleep(1); pathlib.Path({str(ready)!r}).touch(); time.sleep(120)"
then = f"import pathlib, time; pathlib.Path({str(second)!r}).write_text(str(pathlib.Path({str(ready)!r}).exists()))"
commands = {"first": [sys.executable, "-c", first], "second": [sys.executable, "-c", then + "; time.sleep(120)"]}
sys.exit(keep_running(commands, {}, {"second": ready.exists}))
"""


def test_a_command_with_a_condition_starts_once_it_holds(tmp_path: Path) -> None:
    supervisor = subprocess.Popen([sys.executable, "-c", IN_ORDER, str(tmp_path)])
    try:
        second, deadline = tmp_path / "second", time.monotonic() + 60
        while not (second.exists() and second.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert second.read_text() == "True", "the second command started before the first was ready"
    finally:
        supervisor.terminate()
        assert supervisor.wait(30) == 0
