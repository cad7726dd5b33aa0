"""`apot run`'s children die with it however it ends: killed outright, or told its terminal closed."""

from __future__ import annotations

import signal
import subprocess
import sys

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
