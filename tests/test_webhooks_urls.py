"""Callback URLs apot refuses before storing anything (other schemes, hosts on non-public addresses), and the key
webhooks are signed with."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from tests.conftest import RecordingEnqueue
from tests.html import csrf_token, one, parse
from webapp.cli import cli
from webapp.config import Settings, get_settings
from webapp.services.callback_urls import CallbackRefused, check_callback_url, is_public
from webapp.services.webhooks import webhook_secret

GENTOO = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}
INSIDE = [
    "http://127.0.0.1:8000/hook",
    "http://localhost/hook",
    "http://10.1.2.3/hook",
    "http://192.168.0.10/hook",
    "http://172.16.5.4/hook",
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata: link-local
    "http://0.0.0.0/hook",
    "http://224.0.0.1/hook",  # multicast
    "http://240.0.0.1/hook",  # reserved
    "http://100.64.0.1/hook",  # carrier-grade NAT
    "http://[::1]/hook",
    "http://[fe80::1]/hook",
    "http://[fc00::1]/hook",
    "http://[::]/hook",
    "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
    "http://[::ffff:10.0.0.1]/hook",
    "http://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
    "http://[ff02::1]/hook",
]
NOT_HTTP = ["ftp://1.1.1.1/hook", "file:///etc/passwd", "javascript:alert(1)", "gopher://1.1.1.1/", "1.1.1.1/hook"]


def submit(client: TestClient, callback_url: str) -> tuple[int, Any]:
    response = client.post("/api/v1/jobs", json={"model": "penguins", "inputs": GENTOO, "callback_url": callback_url})
    return response.status_code, response.json()


@pytest.mark.parametrize("url", INSIDE)
def test_an_inside_address_is_refused_before_anything_is_stored(
    client: TestClient, enqueue: RecordingEnqueue, url: str
) -> None:
    status, answer = submit(client, url)

    assert status == 422
    (error,) = answer["detail"]
    assert error["loc"] == ["body", "callback_url"]
    assert "not a public address" in error["msg"]
    assert "APOT_WEBHOOK_ALLOW_PRIVATE" in error["msg"]
    assert client.get("/api/v1/jobs").json()["items"] == []
    assert enqueue.dispatches == []


@pytest.mark.parametrize("url", NOT_HTTP)
def test_a_url_that_is_not_http_is_refused(client: TestClient, url: str) -> None:
    status, answer = submit(client, url)

    assert status == 422
    (error,) = answer["detail"]
    assert error["msg"] == "callback_url must start with http:// or https://"


def test_credentials_in_the_url_are_refused(client: TestClient) -> None:
    status, _ = submit(client, "https://user:secret@1.1.1.1/hook")
    assert status == 422


def test_a_public_address_is_accepted(client: TestClient) -> None:
    status, _ = submit(client, "https://1.1.1.1/hook")
    assert status == 202


def test_the_csv_upload_refuses_an_inside_address_too(client: TestClient, enqueue: RecordingEnqueue) -> None:
    response = client.post(
        "/api/v1/jobs/csv",
        files={"file": ("p.csv", b"island,bill_length_mm,flipper_length_mm\nBiscoe,48.6,230\n", "text/csv")},
        data={"model": "penguins", "callback_url": "http://192.168.1.1/hook"},
    )

    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "callback_url"]
    assert client.get("/api/v1/jobs").json()["items"] == []
    assert enqueue.dispatches == []


def test_the_upload_page_explains_a_refused_callback_next_to_its_field(client: TestClient) -> None:
    token = csrf_token(client, "/upload")
    response = client.post(
        "/upload",
        data={"csrf_token": token, "model": "penguins", "callback_url": "http://10.0.0.1/hook"},
        files={"file": ("p.csv", b"island,bill_length_mm,flipper_length_mm\nBiscoe,48.6,230\n", "text/csv")},
    )

    assert response.status_code == 422
    form = one(parse(response.text), "form#upload-form")
    assert "not a public address" in one(form, "#upload-callback-error").text
    assert one(form, "input[name=callback_url]")["value"] == "http://10.0.0.1/hook"
    assert client.get("/api/v1/jobs").json()["items"] == []


def test_a_refused_name_says_nothing_of_what_it_resolves_to() -> None:
    """An unknown name and a name of an inside address get the same answer, without the address: the server is no
    resolver of internal names for its members."""
    answers = []
    for url in ("http://no-such-host.invalid/hook", "http://localhost/hook"):
        with pytest.raises(CallbackRefused) as refused:
            check_callback_url(url, allow_private=False)
        answers.append(str(refused.value).replace(url.split("/")[2], "HOST"))
    assert answers[0] == answers[1]
    assert "127.0.0.1" not in answers[1] and "::1" not in answers[1]


def test_control_characters_are_refused() -> None:
    with pytest.raises(CallbackRefused, match="control characters"):
        check_callback_url("https://1.1.1.1/a\x00b", allow_private=True)


def test_with_the_allow_setting_a_name_that_does_not_resolve_is_still_refused() -> None:
    with pytest.raises(CallbackRefused, match="cannot be resolved"):
        check_callback_url("http://no-such-host.invalid/hook", allow_private=True)


def test_the_allow_setting_lets_inside_addresses_through() -> None:
    target = check_callback_url("http://127.0.0.1:9/hook", allow_private=True)
    assert target.address == ipaddress.ip_address("127.0.0.1")
    assert target.port == 9


@pytest.mark.parametrize("text", ["1.1.1.1", "2606:4700:4700::1111", "::ffff:1.1.1.1"])
def test_public_addresses(text: str) -> None:
    assert is_public(ipaddress.ip_address(text))


@pytest.fixture
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The environment is read again by the command under test, and forgotten after it."""
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_webhook_secret_prints_the_key_the_workers_sign_with(fresh_settings: pytest.MonkeyPatch) -> None:
    fresh_settings.setenv("APOT_SECRET_KEY", "server secret")
    fresh_settings.delenv("APOT_WEBHOOK_SECRET", raising=False)

    derived = CliRunner().invoke(cli, ["webhook-secret"]).output.strip()

    assert derived == webhook_secret(Settings(secret_key=SecretStr("server secret"))).decode()
    assert "server secret" not in derived, "the server secret itself is never handed out"
    fresh_settings.setenv("APOT_WEBHOOK_SECRET", "chosen")
    get_settings.cache_clear()
    assert CliRunner().invoke(cli, ["webhook-secret"]).output.strip() == "chosen"


@pytest.mark.parametrize(
    "setting", [("APOT_DATABASE_URL", "postgresql+psycopg://apot@db.internal/apot"), ("APOT_HOST", "0.0.0.0")]
)
def test_production_refuses_to_start_without_a_secret_and_says_how_to_make_one(
    fresh_settings: pytest.MonkeyPatch, tmp_path: Path, setting: tuple[str, str]
) -> None:
    fresh_settings.delenv("APOT_SECRET_KEY", raising=False)
    fresh_settings.delenv("APOT_WEBHOOK_SECRET", raising=False)
    fresh_settings.setenv(*setting)
    fresh_settings.chdir(tmp_path)  # no var/secret_key is made here either

    for command in (["web"], ["worker"]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 2, result.output
        assert "APOT_SECRET_KEY is not set" in result.output and "openssl rand -hex 32" in result.output
    assert not (tmp_path / "var").exists()
