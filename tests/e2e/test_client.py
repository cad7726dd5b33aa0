"""`apot predict` and the Python client against a live server and worker: CSV and JSON round trips, errors."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from apot.client import ApotError, Client, Progress
from ml.demo import write_sample_csv
from tests.models import Trained
from tests.processes import apot_env
from tests.stacks import Stack, running_stack

pytestmark = pytest.mark.e2e

ROWS = 5_000  # three chunks of 2,000 on the test stacks
GENTOO = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}
ADELIE = {"island": "Torgersen", "bill_length_mm": 36.7, "flipper_length_mm": 187, "bill_depth_mm": 19.3}
CLASSES = ["Adelie", "Chinstrap", "Gentoo"]
BAD_ROWS = [17, 4321]


@pytest.fixture(scope="module", params=["embedded", "postgres-redis"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, trained_models: dict[str, Trained]
) -> Iterator[Stack]:
    """The client sees one API whatever the stack: two stacks show the ?wait wake-ups of both kinds end its waits."""
    with running_stack(request.param, tmp_path_factory.mktemp(request.param), trained_models) as stack:
        yield stack


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Penguins from the training data, two of them from an island the model has never heard of."""
    path = write_sample_csv(tmp_path_factory.mktemp("csv") / "penguins.csv", ROWS, seed=11)
    rows = pd.read_csv(path, keep_default_na=False, dtype=str)
    rows.loc[BAD_ROWS, "island"] = "Mars"
    rows.to_csv(path, index=False)
    return path


def apot_predict(stack: Stack, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "webapp.cli", "predict", "--model", "penguins", *args],
        env=apot_env(url=stack.base_url, api_key=stack.account.key),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_scored_in_order(results: Path, sample: Path) -> pd.DataFrame:
    result = pd.read_csv(results, keep_default_na=False, dtype=str)
    original = pd.read_csv(sample, keep_default_na=False, dtype=str)
    assert list(result.columns) == [
        *original.columns,
        "prediction",
        *(f"probability_{c}" for c in CLASSES),
        "error",
        "warnings",
    ]
    assert len(result) == ROWS
    assert (result[original.columns] == original).all().all(), "every input row comes back, in order"
    scored = result["error"] == ""
    assert not scored[BAD_ROWS].any()
    assert result.loc[BAD_ROWS, "error"].str.contains("island").all()
    assert set(result.loc[scored, "prediction"]) <= set(CLASSES)
    assert (result.loc[~scored, "prediction"] == "").all()
    return result


def test_the_command_scores_a_csv_file_into_the_output_file(stack: Stack, sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"

    done = apot_predict(stack, str(sample), "-o", str(out))

    assert done.returncode == 0, done.stderr
    result = assert_scored_in_order(out, sample)
    failed = int((result["error"] != "").sum())
    assert f"{ROWS:,} of {ROWS:,} rows scored, {failed} with errors (see the error column): {out}" in done.stderr
    assert done.stdout == ""
    assert not list(tmp_path.glob("*.part")), "no partial download is left behind"


def test_a_job_that_fails_exits_1_with_its_error(stack: Stack, sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"

    done = apot_predict(stack, str(sample), "-o", str(out), "--on-error", "fail")

    assert done.returncode == 1
    assert re.search(r"apot: job \S+ failed: .*island", done.stderr), done.stderr
    assert not out.exists()


def test_ctrl_c_cancels_the_commands_job(stack: Stack, tmp_path: Path) -> None:
    # 100 chunks for one worker process: at 50,000 rows (60,000 rows/s now) the job could end before the Ctrl-C.
    large = write_sample_csv(tmp_path / "large.csv", 200_000, seed=5)
    command = [
        sys.executable,
        "-m",
        "webapp.cli",
        "predict",
        "--model",
        "penguins",
        str(large),
        "-o",
        str(tmp_path / "out.csv"),
    ]
    process = subprocess.Popen(
        command,
        env=apot_env(url=stack.base_url, api_key=stack.account.key),
        stderr=subprocess.PIPE,
        text=True,
        # As in a terminal's foreground: a shell without job control starts background commands (`make test &`,
        # nohup) with SIGINT ignored, the child inherits that, and Python then never raises KeyboardInterrupt.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stderr is not None
    job_id = process.stderr.readline().split()[1].rstrip(":")  # "job ID: URL" once it is submitted

    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stderr
    assert f"apot: cancelled job {job_id} after" in stderr
    with Client(stack.base_url, api_key=stack.account.key) as client:
        assert client.job(job_id)["status"] == "cancelled"
    assert not (tmp_path / "out.csv").exists()


def test_the_command_prints_the_json_result_for_json_rows(stack: Stack, tmp_path: Path) -> None:
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps([GENTOO, ADELIE]))

    as_text = apot_predict(stack, "--json", json.dumps(GENTOO))
    from_file = apot_predict(stack, "--json", f"@{rows}")
    from_stdin = apot_predict(stack, "--json", "-", stdin=json.dumps(ADELIE))

    for done in (as_text, from_file, from_stdin):
        assert done.returncode == 0, done.stderr
    assert [p["label"] for p in json.loads(as_text.stdout)["predictions"]] == ["Gentoo"]
    assert [p["label"] for p in json.loads(from_file.stdout)["predictions"]] == ["Gentoo", "Adelie"]
    assert [p["label"] for p in json.loads(from_stdin.stdout)["predictions"]] == ["Adelie"]


def test_a_file_without_a_required_column_exits_2_saying_which(stack: Stack, sample: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    pd.read_csv(sample).drop(columns=["island"]).to_csv(bad, index=False)
    out = tmp_path / "out.csv"

    done = apot_predict(stack, str(bad), "-o", str(out))

    assert done.returncode == 2
    assert "HTTP 422" in done.stderr
    assert "file: The header lacks these required columns of penguins: island" in done.stderr
    assert not out.exists()


def test_bad_json_values_exit_2_naming_each_field(stack: Stack) -> None:
    done = apot_predict(stack, "--json", json.dumps([GENTOO, {**ADELIE, "island": "Mars"}]))

    assert done.returncode == 2
    assert "inputs[1].island: Input should be 'Biscoe', 'Dream' or 'Torgersen'" in done.stderr
    assert done.stdout == ""


def test_the_client_predicts_and_waits_for_the_answer(stack: Stack) -> None:
    with Client(stack.base_url, api_key=stack.account.key) as client:
        single = client.predict("penguins", GENTOO)
        several = client.predict("penguins", [ADELIE, GENTOO], wait=30)
        first = client.predict("penguins", ADELIE, idempotency_key=f"client-test-{stack.name}")
        retried = client.predict("penguins", ADELIE, idempotency_key=f"client-test-{stack.name}")

    assert single["status"] == "succeeded"
    assert single["result"]["predictions"][0]["label"] == "Gentoo"
    assert [p["label"] for p in several["result"]["predictions"]] == ["Adelie", "Gentoo"]
    assert retried["id"] == first["id"], "a retry with the same Idempotency-Key is the same job"


def test_the_client_submits_follows_and_downloads_a_csv_job(stack: Stack, sample: Path, tmp_path: Path) -> None:
    seen: list[Progress] = []
    with Client(stack.base_url, api_key=stack.account.key) as client:
        created = client.submit_csv("penguins", sample)
        job = client.wait(created["id"], progress=seen.append)
        path = client.download_results(created["id"], tmp_path / "results.csv")
        with pytest.raises(ApotError) as too_late:
            client.cancel(created["id"])

    assert job["status"] == "succeeded", f"{job}\n{stack.logs.read_text()[-3000:]}"
    assert seen[-1] == Progress("succeeded", ROWS, job["rows_failed"], ROWS)
    assert [p.rows_done for p in seen] == sorted(p.rows_done for p in seen), "progress never goes back"
    result = assert_scored_in_order(path, sample)
    assert job["rows_failed"] == int((result["error"] != "").sum())
    assert too_late.value.status == 409


def test_the_client_raises_the_servers_reason(stack: Stack) -> None:
    with Client(stack.base_url, api_key=stack.account.key) as client, pytest.raises(ApotError) as unknown:
        client.predict("no-such-model", GENTOO)

    assert unknown.value.status == 404
    assert "no-such-model" in str(unknown.value.detail)


def test_outcomes_of_a_csv_jobs_rows_are_recorded_by_the_command_and_the_client(
    stack: Stack, sample: Path, tmp_path: Path
) -> None:
    with Client(stack.base_url, api_key=stack.account.key) as client:
        job = client.wait(client.submit_csv("penguins", sample)["id"])
        good = [row for row in range(100) if row not in BAD_ROWS]  # a bad row has no prediction
        outcomes = tmp_path / "outcomes.csv"
        outcomes.write_text("job_id,row,outcome\n" + "".join(f"{job['id']},{row},Adelie\n" for row in good))
        command = [sys.executable, "-m", "webapp.cli", "outcomes", str(outcomes)]
        env = apot_env(url=stack.base_url, api_key=stack.account.key)

        for _ in range(2):  # a second time changes nothing
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
            assert (done.returncode, done.stderr.strip()) == (0, f"{len(good)} outcomes recorded")
        assert client.record_outcomes(outcomes, part_rows=40) == len(good), "sent in three parts"

        outcomes.write_text(f"job_id,row,outcome\n{job['id']},17,Adelie\n{job['id']},0,Emperor\n")
        refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2
        assert "row 17: no such row, or it has no prediction" in refused.stderr
        assert "'Emperor' is not one of the model's classes" in refused.stderr
