"""One user cannot hurt another: a real `apot web` and worker on Postgres + Redis, one user sending every class of bad
input while another submits valid jobs."""

from __future__ import annotations

import io
import json
import socket
import threading
import zipfile
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import httpx2
import pytest

from tests.accounts import add_account
from tests.html import one, parse
from tests.models import Trained
from tests.stacks import Stack, running_stack
from webapp.http.auth import SESSION_COOKIE, session_cookie

GENTOO = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}
VALID_JOBS = 60


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, trained_models: dict[str, Trained]) -> Iterator[Stack]:
    # Postgres: the database that refuses NUL characters, where most of these inputs used to be 500s.
    with running_stack("postgres-redis", tmp_path_factory.mktemp("hostile"), trained_models) as stack:
        yield stack


def admin_browser(stack: Stack) -> httpx2.Client:
    """The stack's admin signed in as a browser is: session cookie, and the CSRF token of a page."""
    client = httpx2.Client(base_url=stack.base_url, timeout=60)
    client.cookies.set(SESSION_COOKIE, session_cookie(stack.secret, stack.account.principal))
    client.headers.update(json.loads(str(one(parse(client.get("/upload-model").text), "body")["hx-headers"])))
    return client


def bad_requests(stack: Stack, api: httpx2.Client, admin: httpx2.Client) -> list[Callable[[], httpx2.Response]]:
    """Each class of bad input found from outside, as one request each (`api` a member's, `admin` a browser's)."""
    job = {"model": "penguins", "inputs": GENTOO}
    huge = '{"model": "penguins", "inputs": {"island": "Biscoe", "bill_length_mm": %s, "flipper_length_mm": 230}}'
    csv_file = {"file": ("f.csv", b"island,bill_length_mm,flipper_length_mm\nBiscoe,48.6,230\n", "text/csv")}

    def upload(content: bytes, **headers: str) -> httpx2.Response:
        return api.post(
            "/api/v1/jobs/csv",
            files={"file": ("f.csv", content, "text/csv")},
            data={"model": "penguins"},
            headers=headers,
        )

    def model_file(content: bytes) -> httpx2.Response:
        files = {"file": ("m.skops", content, "application/octet-stream")}
        return admin.post("/upload-model", data={"name": "hostile"}, files=files, headers={"HX-Request": "true"})

    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("schema.json", "{}")
        archive.writestr("junk.npy", b"\0" * (300 * 1024 * 1024))  # 300 MiB that deflate to about 300 KiB

    return [
        lambda: api.post("/api/v1/jobs", json=job, headers={"Idempotency-Key": ""}),
        lambda: api.post("/api/v1/jobs", json=job, headers={"Idempotency-Key": ""}),
        lambda: api.post(
            "/api/v1/jobs/csv", files=csv_file, data={"model": "penguins"}, headers={"Idempotency-Key": ""}
        ),
        lambda: api.get("/api/v1/jobs", params={"model": "a\x00b"}),
        lambda: api.get("/api/v1/jobs", params={"user": "a\x00b"}),
        lambda: api.get("/api/v1/models/a%00b"),
        lambda: api.post("/api/v1/jobs", json={**job, "model": "pen\x00guins"}),
        lambda: api.post("/api/v1/jobs", content=huge % ("9" * 400), headers={"content-type": "application/json"}),
        lambda: upload(b"\xef\xbb\xbf"),
        lambda: upload(b"99P\xf3"),
        lambda: upload(b"island,bill\xc3"),
        lambda: model_file(b"\x80\x04\x95 a pickle, renamed .skops"),
        lambda: model_file(bomb.getvalue()),
        lambda: api.get("/api/v1/models", headers={"X-Padding": "x" * (1024 * 1024)}),
    ]


def test_one_users_bad_inputs_are_4xx_and_another_users_jobs_all_go_through(stack: Stack) -> None:
    mallory, olga = add_account(stack.models.sessions, "mallory"), add_account(stack.models.sessions, "olga")
    api = httpx2.Client(base_url=stack.base_url, headers=mallory.bearer, timeout=60)
    admin = admin_browser(stack)
    requests = bad_requests(stack, api, admin)
    bad: list[tuple[int, int | str]] = []
    good: list[int | str] = []

    def attack() -> None:
        for index, send in enumerate(requests):
            try:
                bad.append((index, send().status_code))
            except httpx2.TransportError as exc:  # a reset connection is a failure too
                bad.append((index, type(exc).__name__))

    def submit(count: int) -> None:
        with httpx2.Client(base_url=stack.base_url, headers=olga.bearer, timeout=60) as client:
            for _ in range(count):
                good.append(client.post("/api/v1/jobs", json={"model": "penguins", "inputs": GENTOO}).status_code)

    threads = [
        threading.Thread(target=attack),
        *(threading.Thread(target=submit, args=(VALID_JOBS // 4,)) for _ in range(4)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    api.close()
    admin.close()

    assert good == [202] * VALID_JOBS
    wrong = [(index, status) for index, status in bad if not (isinstance(status, int) and 400 <= status < 500)]
    assert wrong == [], f"not a 4xx: {wrong}\n{stack.logs.read_text()[-3000:]}"
    assert "Traceback" not in stack.logs.read_text()


def test_a_16_mb_header_is_refused_before_it_is_read_and_the_server_answers_on(stack: Stack) -> None:
    address = urlsplit(stack.base_url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as connection:
        head = b"GET /api/v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer apot_deadbeef_"
        connection.sendall(head)
        try:
            for _ in range(256):  # 16 MiB, 64 KiB at a time, until the server closes the connection
                connection.sendall(b"a" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = connection.recv(4096)
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert httpx2.get(f"{stack.base_url}/healthz", timeout=5).status_code == 200


def test_healthz_answers_while_hostile_model_files_are_handled(stack: Stack) -> None:
    admin = admin_browser(stack)
    pickle = b"\x80\x04\x95" + b"\0" * (20 * 1024 * 1024)  # 20 MiB that is no zip: once 142 s of parsing
    answers: list[int] = []

    def upload() -> None:
        files = {"file": ("m.skops", pickle, "application/octet-stream")}
        answers.append(admin.post("/upload-model", data={"name": "hostile"}, files=files).status_code)

    uploads = [threading.Thread(target=upload) for _ in range(3)]
    for thread in uploads:
        thread.start()
    health = [httpx2.get(f"{stack.base_url}/healthz", timeout=5).status_code for _ in range(5)]
    for thread in uploads:
        thread.join()
    admin.close()
    assert health == [200] * 5
    assert answers == [422] * 3


def test_x_forwarded_for_from_loopback_does_not_choose_the_address_sign_in_limits_count(stack: Stack) -> None:
    """No proxy is trusted unless named (APOT_TRUSTED_PROXIES): a new X-Forwarded-For per guess is no new address."""
    add_account(stack.models.sessions, "carol")
    with httpx2.Client(base_url=stack.base_url, timeout=60) as browser:
        token = str(one(parse(browser.get("/login").text), "input[name=csrf_token]")["value"])
        codes = [
            browser.post(
                "/login",
                data={"csrf_token": token, "name": "carol", "password": f"guess {i}"},
                headers={"X-Forwarded-For": f"203.0.113.{i}"},
            ).status_code
            for i in range(9)
        ]
    # Six from one address, then pauses (the first of 2 s, should this machine be slower than that).
    assert codes[:6] == [422] * 6 and 429 in codes[6:]
