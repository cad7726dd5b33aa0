"""Every class of bad input an attacker or an unlucky user sent is a clear 4xx, never a 500, on SQLite and Postgres,
and stores nothing."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from ml import store
from tests.html import csrf_token
from webapp.models import Job

GENTOO = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}
CSV = b"island,bill_length_mm,flipper_length_mm\nBiscoe,48.6,230\n"


def jobs_stored(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(Job)) or 0


def upload_csv(client: TestClient, content: bytes, headers: dict[str, str] | None = None) -> Any:
    files = {"file": ("f.csv", content, "text/csv")}
    return client.post("/api/v1/jobs/csv", files=files, data={"model": "penguins"}, headers=headers or {})


@pytest.mark.parametrize("key", ["", " ", "\t", "a\x01b"], ids=["empty", "space", "tab", "control"])
def test_an_empty_or_blank_idempotency_key_is_422_every_time(client: TestClient, engine: Engine, key: str) -> None:
    for _ in range(2):  # the second used to break the unique index: a 500, and the whole group with it
        response = client.post(
            "/api/v1/jobs", json={"model": "penguins", "inputs": GENTOO}, headers={"Idempotency-Key": key}
        )
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["header", "idempotency-key"]
        assert upload_csv(client, CSV, {"Idempotency-Key": key}).status_code == 422
    assert jobs_stored(engine) == 0


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/jobs?model=a%00b",
        "/api/v1/jobs?user=a%00b",
        "/api/v1/models/a%00b",
        "/models/a%00b",
        "/jobs?model=a%00b",
        "/api/v1/jobs?%00=1",
    ],
)
def test_a_nul_in_the_url_is_400(admin_client: TestClient, url: str) -> None:
    """Postgres refuses NUL in text: before, each of these reached a query and was a 500 there."""
    response = admin_client.get(url)
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]


@pytest.mark.parametrize("field", ["model", "version", "callback_url"])
def test_a_nul_in_a_json_string_is_422(client: TestClient, engine: Engine, field: str) -> None:
    body = {
        "model": "penguins",
        "inputs": GENTOO,
        field: "https://1.1.1.1/a\x00b" if field == "callback_url" else "a\x00b",
    }
    response = client.post("/api/v1/jobs", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", field]
    assert jobs_stored(engine) == 0


def test_a_nul_in_a_form_field_is_422_naming_the_field(anonymous: TestClient) -> None:
    token = csrf_token(anonymous, "/login")
    response = anonymous.post("/login", data={"csrf_token": token, "name": "ad\x00min", "password": "x"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "name"]


@pytest.mark.parametrize("field", ["callback_url", "version", "unknown"])
def test_a_nul_in_an_upload_form_is_422_like_in_json(client: TestClient, engine: Engine, field: str) -> None:
    # Schemathesis sends such forms as schema-valid: the answer must be one its schema documents for bad values.
    response = client.post(
        "/api/v1/jobs/csv",
        data={"model": "penguins", field: "https://1.1.1.1/a\x00b"},
        files={"file": ("a.csv", CSV, "text/csv")},
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", field]
    assert jobs_stored(engine) == 0


# 400 and 4000 digits overflow a float; 20 digits fit a float but not the 64 bits the job's JSON stores (found by
# schemathesis: -36893488147419103232 was a 500).
@pytest.mark.parametrize("number", ["9" * 400, "9" * 4000, "-36893488147419103232"])
def test_an_integer_too_large_to_store_is_422(client: TestClient, engine: Engine, number: str) -> None:
    body = '{"model": "penguins", "inputs": {"island": "Biscoe", "bill_length_mm": %s, "flipper_length_mm": 230}}'
    response = client.post("/api/v1/jobs", content=body % number, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "inputs", "bill_length_mm"]
    assert jobs_stored(engine) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xef\xbb\xbf", "empty"),
        (b"99P\xf3", "not UTF-8"),
        (b"island,bill\xc3", "not UTF-8"),
    ],
    ids=["only a BOM", "ends inside a character", "header ends inside a character"],
)
def test_a_csv_that_is_no_table_is_422(client: TestClient, engine: Engine, content: bytes, message: str) -> None:
    response = upload_csv(client, content)
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"][0]["msg"]
    assert jobs_stored(engine) == 0


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def model_upload(client: TestClient, data: bytes) -> Any:
    token = csrf_token(client, "/upload-model")
    return client.post(
        "/upload-model",
        data={"csrf_token": token, "name": "hostile"},
        files={"file": ("m.skops", data, "application/octet-stream")},
        follow_redirects=False,
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\x04\x95joblib or pickle, renamed", "not a skops model"),
        (b"", "not a skops model"),
        (zip_of({"other.json": b"{}"}), "no schema.json"),
        (zip_of({"schema.json": b"{not json"}), "not a readable skops model"),
        (zip_of({"schema.json": b"{}", "big.npy": b"\0" * (3 * 1024 * 1024)}), "inflates to 3 MiB; at most 2 MiB"),
        (zip_of({"schema.json": b"{}", **{f"{i}.npy": b"" for i in range(20)}}), "21 members; at most 20"),
    ],
    ids=["pickle", "empty", "no schema", "bad schema", "zip bomb", "many members"],
)
def test_a_model_file_that_is_no_skops_model_is_422(
    admin_client: TestClient, monkeypatch: pytest.MonkeyPatch, data: bytes, message: str
) -> None:
    # The limits made small, so that the files that cross them are small too (the real ones are 256 MiB, 10,000).
    monkeypatch.setattr(store, "SKOPS_MAX_UNCOMPRESSED_BYTES", 2 * 1024 * 1024)
    monkeypatch.setattr(store, "SKOPS_MAX_MEMBERS", 20)
    response = model_upload(admin_client, data)
    assert response.status_code == 422, response.text
    assert message in response.text
