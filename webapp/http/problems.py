"""Errors as RFC 9457 problem details (application/problem+json), for every answer to a program.

A problem document keeps FastAPI's `detail` (a sentence, or for a 422 the list of field errors), so clients written
for FastAPI's shape read it unchanged; the protocols apot also speaks get the member their own clients read (the Open
Inference Protocol's `error`, MLflow's `error_code` and `message`). There is no `instance`: the path asked for is
the client's to know, and echoing it would repeat ids into logs and pages that quote the answer.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

PROBLEM_JSON = "application/problem+json"
# MLflow's scoring server names its errors with these codes (mlflow.protos.databricks_pb2).
MLFLOW_ERROR_CODES = {400: "BAD_REQUEST", 404: "RESOURCE_DOES_NOT_EXIST", 422: "BAD_REQUEST"}


def problem(status: int, detail: Any, path: str) -> dict[str, Any]:
    """The RFC 9457 document of an error answer, with the members the protocol served at `path` expects."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    text = detail if isinstance(detail, str) else "; ".join(_error_lines(detail))
    if path.startswith("/v2/"):
        body["error"] = text
    elif path.endswith("/invocations"):
        body["error_code"] = MLFLOW_ERROR_CODES.get(status, "INTERNAL_ERROR" if status >= 500 else "BAD_REQUEST")
        body["message"] = text
    return body


def _error_lines(detail: Any) -> list[str]:
    if not isinstance(detail, list):
        return [str(detail)]
    return [f"{'.'.join(str(part) for part in e.get('loc', ()))}: {e.get('msg')}" for e in detail]
