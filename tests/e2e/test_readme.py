"""The README's shell commands, run as printed against a live `apot run`: the JSON API's curl lines and the command
line client, in order, in a shell that has `apot` on its PATH as `source .venv/bin/activate` gives it.

Only what cannot be the same on a test machine is replaced: the address (`localhost:8000`, `apot.internal:8000`)
by the test server's, and the example job id `6f1c…` by the id the command before printed. curl gets
`--fail-with-body`, so an answer of 4xx or 5xx fails the test instead of printing quietly (as a 401 once did).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.e2e.test_run_command import wait_for_banner
from tests.processes import apot_env, free_port, start_apot, stop

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("## The JSON API", "## Command-line and Python client")
JOB_ID = re.compile(r'"id":\s*"([0-9a-f-]{36})"')


def shell_commands(section: str) -> list[tuple[str, str]]:
    """Each complete command of the section's ```sh blocks, with the comment lines printed after it (its output)."""
    readme = (ROOT / "README.md").read_text()
    text = readme.split(f"\n{section}\n", 1)[1].split("\n## ", 1)[0]
    commands: list[tuple[str, str]] = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL):
        pending = ""
        for line in block.splitlines():
            if line.startswith("#") and not pending:
                if commands:
                    commands[-1] = (commands[-1][0], commands[-1][1] + line + "\n")
                continue
            pending += line + "\n"
            if line.endswith("\\"):
                continue
            if subprocess.run(["bash", "-n"], input=pending, text=True, capture_output=True).returncode == 0:
                commands.append((pending, ""))
                pending = ""
        assert not pending, f"an incomplete command in the README: {pending}"
    return commands


def test_the_readmes_commands_work_as_printed(tmp_path: Path) -> None:
    port = free_port()
    base = f"127.0.0.1:{port}"
    env = apot_env(port=str(port), home=str(tmp_path / "instance"))
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"  # what `source .venv/bin/activate` does
    work = tmp_path / "work"  # any folder: apot finds the instance by APOT_HOME, as it would find the checkout's
    work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    log = tmp_path / "run.log"
    server = start_apot(["run"], env, log, cwd=work)
    try:
        wait_for_banner(server, log)
        job_id = ""
        ran = 0
        for section in SECTIONS:
            for command, output in shell_commands(section):
                line = command.replace("localhost:8000", base).replace("http://apot.internal:8000", f"http://{base}")
                line = line.replace("curl -s ", "curl -s --fail-with-body ").replace("6f1c…", job_id)
                env, printed = run(line, env, work)
                expected_refusal = '"detail"' in output
                assert printed.returncode == (22 if expected_refusal else 0) or "/cancel" in line, (
                    f"{command}\nexited {printed.returncode}:\n{printed.stdout}\n{printed.stderr}"
                )
                if found := JOB_ID.search(printed.stdout):
                    job_id = found.group(1)
                ran += 1
        assert ran >= 15 and env.get("APOT_KEY", "").startswith("apot_")
        assert (work / "scored.csv").read_text().startswith("island,"), "apot predict wrote the results"
        assert (work / "results.csv").read_text().startswith("island,"), "the CSV job's results were downloaded"
    finally:
        assert stop(server, signal.SIGINT) == 0


def run(command: str, env: dict[str, str], cwd: Path) -> tuple[dict[str, str], subprocess.CompletedProcess[str]]:
    """One command in bash (errors in pipes count); the environment it leaves (its exports) goes to the next."""
    dump = cwd / ".env-after"
    script = f"set -o pipefail\n{command}\nstatus=$?\nenv -0 > {dump}\nexit $status\n"
    printed = subprocess.run(["bash", "-c", script], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    after = dict(item.split("=", 1) for item in dump.read_text().split("\0") if "=" in item)
    return after, printed
