"""`apot predict`: score a CSV file or JSON rows on a running apot server, through the Python client."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.progress import Progress as Bar
from rich.text import Text

from apot.client import DEFAULT_URL, ApotError, Client, Progress


class OnError(StrEnum):
    skip = "skip"
    fail = "fail"


def predict(
    model: Annotated[str, typer.Option(help="Model name, as `apot models list` or GET /api/v1/models shows it")],
    file: Annotated[
        Path | None, typer.Argument(exists=True, dir_okay=False, help="CSV file to score (or use --json)")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Where to write a CSV file's results")] = None,
    json_inputs: Annotated[
        str | None,
        typer.Option(
            "--json", help="One row as a JSON object or rows as a list; @FILE reads it from FILE, - from stdin"
        ),
    ] = None,
    version: Annotated[str | None, typer.Option(help="Pin a model version; default: the model's default")] = None,
    on_error: Annotated[
        OnError, typer.Option(help="CSV rows with bad values: skip them or fail the job")
    ] = OnError.skip,
    url: Annotated[str, typer.Option(envvar="APOT_URL", help="The apot server")] = DEFAULT_URL,
    api_key: Annotated[str | None, typer.Option(envvar="APOT_API_KEY", help="API key", show_default=False)] = None,
) -> None:
    """Score a CSV file (results to -o OUT.csv, a progress bar on stderr) or JSON rows (result JSON to stdout).

    Exit codes: 0 done, 1 the job failed or was cancelled or the server could not answer, 2 a bad request.
    """
    if (file is None) == (json_inputs is None):
        raise typer.BadParameter("give either a CSV FILE or --json, not both", param_hint="FILE / --json")
    with _reported(), Client(url, api_key) as client:
        if json_inputs is not None:
            _predict_json(client, model, _read_json(json_inputs), version)
        else:
            assert file is not None
            if output is None:
                raise typer.BadParameter("a CSV file needs -o OUT.csv for its results", param_hint="--output")
            _predict_csv(client, model, file, output, version, on_error)


def outcomes(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            help="CSV file of job_id,row,outcome (or a CSV job's own id column in place of row)",
        ),
    ],
    url: Annotated[str, typer.Option(envvar="APOT_URL", help="The apot server")] = DEFAULT_URL,
    api_key: Annotated[str | None, typer.Option(envvar="APOT_API_KEY", help="API key", show_default=False)] = None,
) -> None:
    """Report the true outcomes of predicted rows: a CSV of job_id,row (0-based, in the job's input order),outcome.

    Sending the same file again changes nothing. Exit codes: 0 stored, 1 the server could not answer, 2 a row was
    refused (each named; that part of the file was not stored).
    """
    with _reported(), Client(url, api_key) as client:
        recorded = client.record_outcomes(file)
    typer.echo(f"{recorded:,} outcomes recorded", err=True)


def _predict_json(client: Client, model: str, inputs: Any, version: str | None) -> None:
    job = client.predict(model, inputs, version)
    if job["status"] != "succeeded":
        raise _ended_badly(job)
    typer.echo(json.dumps(job["result"], indent=2))


def _predict_csv(client: Client, model: str, file: Path, output: Path, version: str | None, on_error: str) -> None:
    created = client.submit_csv(model, file, version, on_error="fail" if on_error == "fail" else "skip")
    job_id = created["id"]
    try:
        typer.echo(f"job {job_id}: {created['url']}", err=True)
        with RowsBar(Console(stderr=True)) as bar:
            job = client.wait(job_id, progress=bar.update)
    except KeyboardInterrupt:
        # The job is this command's own: leaving it to run on would score a file nobody is waiting for.
        typer.echo(_cancel(client, job_id), err=True)
        raise typer.Exit(130) from None
    if job["status"] == "failed":
        raise _ended_badly(job)
    client.download_results(job_id, output)
    failed = f", {job['rows_failed']:,} with errors (see the error column)" if job["rows_failed"] else ""
    typer.echo(f"{job['rows_done']:,} of {job['rows_total']:,} rows scored{failed}: {output}", err=True)
    if job["status"] != "succeeded":
        raise _ended_badly(job)


def _cancel(client: Client, job_id: str) -> str:
    try:
        job = client.cancel(job_id)
    except ApotError as exc:
        if exc.status != 409:
            raise
        return f"apot: job {job_id} had already ended; its results were not downloaded"
    return f"apot: cancelled job {job_id} after {job['rows_done']:,} of {job['rows_total']:,} rows"


def _ended_badly(job: dict[str, Any]) -> typer.Exit:
    reason = f": {job['error']}" if job.get("error") else ""
    typer.echo(f"apot: job {job['id']} {job['status']}{reason}", err=True)
    return typer.Exit(1)


def _read_json(text: str) -> Any:
    """The --json value: JSON itself, @FILE for a file's, - for standard input's."""
    source = "--json"
    try:
        if text == "-":
            text, source = sys.stdin.read(), "standard input"
        elif text.startswith("@"):
            source = text[1:]
            text = Path(source).read_text()
        return json.loads(text)
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {source}: {exc.strerror}", param_hint="--json") from exc
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"{source} is not valid JSON: {exc}", param_hint="--json") from exc


@contextmanager
def _reported() -> Iterator[None]:
    """An ApotError as one readable message; exit 2 when the request itself was wrong (4xx but 429), else 1."""
    try:
        yield
    except ApotError as exc:
        typer.echo(f"apot: {exc}", err=True)
        wrong_request = exc.status is not None and 400 <= exc.status < 500 and exc.status != 429
        raise typer.Exit(2 if wrong_request else 1) from None


class RowsPerSecond(ProgressColumn):
    """Rows scored per second, once there is enough to measure."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:,.0f} rows/s" if task.speed else "", style="progress.data.speed")


class RowsBar:
    """A progress bar fed with the job's Progress: rows done of rows total, rate and time left."""

    def __init__(self, console: Console) -> None:
        self._bar = Bar(
            TextColumn("{task.description:<9}"),
            BarColumn(),
            MofNCompleteColumn(),
            RowsPerSecond(),
            TimeRemainingColumn(),
            console=console,
        )
        self._task = self._bar.add_task("queued", total=None)

    def update(self, progress: Progress) -> None:
        self._bar.update(
            self._task, description=progress.status, completed=progress.rows_done, total=progress.rows_total or None
        )

    def __enter__(self) -> RowsBar:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()
