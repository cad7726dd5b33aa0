"""A small Python client for apot's JSON API (what `apot predict` uses); it imports no server code, only httpx2."""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import httpx2

DEFAULT_URL = "http://127.0.0.1:8000"
LONGEST_WAIT = 30.0  # the server holds a request at most this long (Prefer: wait, ?wait)
PROGRESS_EVERY = 1.0  # with a progress callback, ask again this often; the end still answers at once
ENDED = frozenset({"succeeded", "failed", "cancelled"})
OUTCOME_PART_ROWS = 10_000  # the most outcomes the server takes in one request

Job = dict[str, Any]
Inputs = dict[str, Any] | Sequence[dict[str, Any]]


class ApotError(Exception):
    """A request that did not succeed: an HTTP error answer (`status`, the server's `detail`) or no answer at all."""

    def __init__(
        self, message: str, *, status: int | None = None, detail: Any = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after

    @classmethod
    def from_response(cls, response: httpx2.Response) -> ApotError:
        """The error an answer of 400 or more stands for, with a message a person can act on."""
        try:
            detail = response.json()["detail"]
        except (ValueError, KeyError, TypeError):
            detail = response.text.strip()[:500] or response.reason_phrase
        status = response.status_code
        retry_after = _seconds(response.headers.get("retry-after"))
        hint = {
            401: "send a valid API key (api_key=, --api-key or APOT_API_KEY)",
            403: "this API key may not do that",
            429: f"too many requests; retry after {retry_after:g} s"
            if retry_after is not None
            else "too many requests",
            503: "apot is unavailable for now; try again in a moment",
        }.get(status)
        message = f"HTTP {status}: {describe_detail(detail)}" + (f" ({hint})" if hint else "")
        return cls(message, status=status, detail=detail, retry_after=retry_after)


def describe_detail(detail: Any) -> str:
    """FastAPI's `detail`: a sentence as it is, a list of validation errors as one `field: message` line each."""
    if isinstance(detail, list) and all(isinstance(e, dict) for e in detail):
        return "the request was refused:" + "".join(
            f"\n  {field_name(e.get('loc', []))}: {e.get('msg')}" for e in detail
        )
    return str(detail)


def field_name(loc: Sequence[Any]) -> str:
    """("body", "inputs", 0, "island") -> "inputs[0].island": where the error is, without the word "body"."""
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else f".{part}" if name else str(part)
    return name or "request"


def _seconds(retry_after: str | None) -> float | None:
    """Retry-After as seconds from now: it is either a number of seconds or an HTTP date."""
    if not retry_after:
        return None
    if retry_after.strip().isdigit():
        return float(retry_after)
    try:
        return max(0.0, parsedate_to_datetime(retry_after).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Progress:
    """How far a job has got, as `wait(progress=...)` reports it."""

    status: str
    rows_done: int
    rows_failed: int
    rows_total: int

    @classmethod
    def of(cls, job: Job) -> Progress:
        return cls(job["status"], job.get("rows_done", 0), job.get("rows_failed", 0), job.get("rows_total", 0))

    @property
    def ended(self) -> bool:
        return self.status in ENDED


class Client:
    """apot's JSON API at `url`; jobs come back as the API's JSON objects (dicts). Use it as a context manager."""

    def __init__(self, url: str = DEFAULT_URL, api_key: str | None = None, timeout: float = 30.0) -> None:
        # "localhost:8000" means what curl takes it to mean, not a URL with the scheme "localhost".
        self.url = (url if "://" in url else f"http://{url}").rstrip("/")
        self.timeout = timeout
        headers = {"User-Agent": "apot-client"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx2.Client(base_url=self.url, headers=headers, timeout=timeout)

    def models(self) -> list[dict[str, Any]]:
        """Every model at its default version, with its input schema."""
        return list(self._send("GET", "/api/v1/models").json())

    def predict(
        self,
        model: str,
        inputs: Inputs,
        version: str | None = None,
        wait: float | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Score one row (a dict) or several (a list of dicts) and return the job once it has ended.

        `wait`: seconds to wait at most (None: until it ends; 0: return the queued job at once). The job comes back
        as it is then: check its `status` ("succeeded", with `result`, or "failed", with `error`).
        """
        body = {"model": model, "version": version, "inputs": inputs}
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        step = LONGEST_WAIT if wait is None else min(wait, LONGEST_WAIT)
        if step > 0:
            headers["Prefer"] = f"wait={step:g}"
        started = time.monotonic()
        job: Job = self._send("POST", "/api/v1/jobs", json=body, headers=headers, holds=step).json()
        if job["status"] in ENDED or wait == 0:
            return job
        return self.wait(job["id"], timeout=None if wait is None else wait - (time.monotonic() - started))

    def submit_csv(
        self,
        model: str,
        path: str | os.PathLike[str],
        version: str | None = None,
        on_error: Literal["skip", "fail"] = "skip",
        idempotency_key: str | None = None,
    ) -> Job:
        """Upload a CSV file to score; returns the queued job (`id`, `url`) at once: follow it with `wait`."""
        path = Path(path)
        data = {"model": model, "on_error": on_error, **({"version": version} if version else {})}
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        with path.open("rb") as f:
            files = {"file": (path.name, f, "text/csv")}
            # The server reads the whole upload before it answers: a large file needs more than the usual timeout.
            return dict(
                self._send("POST", "/api/v1/jobs/csv", files=files, data=data, headers=headers, holds=300).json()
            )

    def job(self, job_id: object, wait: float = 0) -> Job:
        """A job as it is now, or as soon as it ends within `wait` seconds (at most 30)."""
        wait = min(wait, LONGEST_WAIT)
        params = {"wait": f"{wait:g}"} if wait > 0 else {}
        return dict(self._send("GET", f"/api/v1/jobs/{job_id}", params=params, holds=wait).json())

    def wait(
        self, job_id: object, progress: Callable[[Progress], object] | None = None, timeout: float | None = None
    ) -> Job:
        """Hold until the job ends (or `timeout` seconds pass) and return it; `progress` is called with each news.

        The server answers the moment the job ends, so there is no polling delay; with a callback it is asked again
        every second so that a bar can move.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        step = 0 if progress else LONGEST_WAIT  # a bar wants the row counts at once, not after the first hold
        while True:
            left = step if deadline is None else min(step, deadline - time.monotonic())
            job = self.job(job_id, wait=max(left, 0))
            if progress:
                progress(Progress.of(job))
            if job["status"] in ENDED or (deadline is not None and time.monotonic() >= deadline):
                return job
            step = PROGRESS_EVERY if progress else LONGEST_WAIT

    def download_results(self, job_id: object, out_path: str | os.PathLike[str]) -> Path:
        """Stream an ended CSV job's results file to `out_path`; a broken download leaves no half file behind."""
        out = Path(out_path)
        partial = out.with_name(out.name + ".part")
        try:
            with self._stream("GET", f"/api/v1/jobs/{job_id}/results.csv") as response, partial.open("wb") as f:
                for chunk in response.iter_bytes():
                    f.write(chunk)
            partial.replace(out)
        finally:
            partial.unlink(missing_ok=True)
        return out

    def record_outcomes(self, path: str | os.PathLike[str], part_rows: int = OUTCOME_PART_ROWS) -> int:
        """Send a CSV file of job_id,row,outcome (the true labels or values of predicted rows; in place of `row`, a
        column of CSV jobs' own files, such as an id, finds each row by its value there); returns how many
        were stored. Each part of `part_rows` is stored whole or not at all; sending a file again is harmless."""
        with Path(path).open(newline="", encoding="utf-8-sig") as f:
            rows = csv.reader(f)
            header = next(rows, None)
            if header is None:
                return 0
            recorded = 0
            for part in _parts(rows, part_rows):
                text = io.StringIO()
                csv.writer(text, lineterminator="\n").writerows([header, *part])
                headers = {"Content-Type": "text/csv"}
                recorded += int(
                    self._send("POST", "/api/v1/outcomes", content=text.getvalue(), headers=headers).json()["recorded"]
                )
            return recorded

    def cancel(self, job_id: object) -> Job:
        """Stop a queued or running job; what was scored stays readable. An ended job answers 409."""
        return dict(self._send("POST", f"/api/v1/jobs/{job_id}/cancel").json())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def _send(self, method: str, path: str, holds: float = 0, **kwargs: Any) -> httpx2.Response:
        """One request; `holds`: seconds the server may keep it on purpose, added to the read timeout."""
        with self._stream(method, path, holds, **kwargs) as response:
            response.read()
            return response

    @contextmanager
    def _stream(self, method: str, path: str, holds: float = 0, **kwargs: Any) -> Iterator[httpx2.Response]:
        timeout = httpx2.Timeout(self.timeout, read=self.timeout + holds)
        try:
            with self._http.stream(method, path, timeout=timeout, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ApotError.from_response(response)
                yield response
        except httpx2.TimeoutException as exc:
            raise ApotError(f"apot at {self.url} did not answer within {self.timeout + holds:g} s") from exc
        except httpx2.TransportError as exc:
            raise ApotError(f"cannot reach apot at {self.url}: {exc or type(exc).__name__}") from exc


def _parts(rows: Iterator[list[str]], size: int) -> Iterator[list[list[str]]]:
    part: list[list[str]] = []
    for row in rows:
        part.append(row)
        if len(part) == size:
            yield part
            part = []
    if part:
        yield part
