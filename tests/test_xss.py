"""What users supply renders as text: form values, CSV headers and cells, model names and error messages carrying
<script> or hx-* attributes never become markup."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from ml.store import ModelNotFound
from tests.html import csrf_token, parse
from webapp.models import Job

SCRIPT = "<script>alert(1)</script>"
HTMX_ATTACK = '<div hx-get="/admin/users" hx-trigger="load">x</div>'
IMG = "<img src=x onerror=alert(1)>"
STATIC = "http://testserver/static/"


def assert_inert(page: BeautifulSoup) -> None:
    """Only apot's own scripts (htmx and static/apot.js) and no element with an injected handler or htmx attribute."""
    assert [s.get("src", "") for s in page.find_all("script")] == [
        s.get("src") for s in page.find_all("script", src=True)
    ]
    sources = sorted(str(s["src"]).rsplit("/static/", 1)[-1] for s in page.find_all("script"))
    assert sources == ["apot.js", "vendor/htmx-2.0.11.min.js"], "the only scripts are ours, loaded from /static"
    assert not page.find_all("img", onerror=True)
    assert not page.select("[hx-trigger=load]")


def test_a_form_value_with_markup_comes_back_as_text(client: TestClient) -> None:
    token = csrf_token(client, "/models/sizes")
    response = client.post("/models/sizes/jobs", data={"csrf_token": token, "size": SCRIPT, "colour": HTMX_ATTACK})
    assert response.status_code == 422
    page = parse(response.text)
    assert_inert(page)
    assert page.select_one("#f-size")["value"] == SCRIPT  # type: ignore[index]


def test_csv_headers_and_cells_with_markup_render_as_text(
    client: TestClient, enqueue: object, registry: object
) -> None:
    content = f"size,colour,{IMG}\n1,red,{SCRIPT}\n".encode()
    files = {"file": (f"{SCRIPT}.csv", content, "text/csv")}
    job = client.post("/api/v1/jobs/csv", files=files, data={"model": "sizes"}).json()
    enqueue.deliver(registry)  # type: ignore[attr-defined]
    page = parse(client.get(f"/jobs/{job['id']}").text)
    assert_inert(page)
    assert IMG in page.get_text() and SCRIPT in page.get_text()
    results = client.get(f"/api/v1/jobs/{job['id']}/results.csv")
    assert results.headers["content-type"].startswith("text/csv")
    assert results.headers["x-content-type-options"] == "nosniff"


def test_an_error_message_with_markup_renders_as_text(client: TestClient, engine: Engine) -> None:
    job = client.post("/api/v1/jobs", json={"model": "sizes", "inputs": {"size": 2, "colour": "red"}}).json()
    with Session(engine) as session, session.begin():
        session.execute(update(Job).values(status="failed", error=f"bad row {HTMX_ATTACK}{SCRIPT}"))
    for path in (f"/jobs/{job['id']}", f"/jobs/{job['id']}/status", "/jobs", "/"):
        page = parse(client.get(path, headers={"accept": "text/html"}).text)
        assert not page.select("[hx-trigger=load]"), path
        assert all(str(script.get("src", "")).startswith(STATIC) for script in page.find_all("script")), path


@pytest.mark.parametrize("name", [SCRIPT, IMG, "a b", 'x"><svg onload=alert(1)>'])
def test_a_model_name_with_markup_is_never_registered_or_echoed_as_markup(
    client: TestClient, registry: object, name: str
) -> None:
    with pytest.raises((ValueError, ModelNotFound)):
        registry.register(b"not a model", "skops", name, None)  # type: ignore[attr-defined]
    response = client.get(f"/models/{name}", headers={"accept": "text/html"})
    assert response.status_code == 404
    page = parse(response.text)
    assert_inert(page)
    assert not page.find_all("svg", onload=True)
