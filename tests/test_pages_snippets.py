"""A model page's ready-to-copy requests and CSV template, and the API reference page: all filled from the model's
schema and accepted by the API as they are."""

from __future__ import annotations

import ast
import csv
import io
import json
import shlex

import pytest
from fastapi.testclient import TestClient

from tests.conftest import RecordingEnqueue
from tests.html import one, parse
from webapp.services.models import ModelRegistry

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def snippet(client: TestClient, kind: str, path: str = "/models/penguins") -> str:
    return one(parse(client.get(path).text), f"#snippet-{kind}").text


def test_the_curl_snippet_is_a_request_the_api_accepts(client: TestClient) -> None:
    words = shlex.split(snippet(client, "curl").replace("\\\n", " "))
    assert words[:2] == ["curl", "-s"] and "Prefer: wait" in words
    url = words[words.index("-XPOST") + 1]
    assert url == "http://testserver/api/v1/jobs"
    body = json.loads(words[words.index("-d") + 1])
    assert body["model"] == "penguins" and set(body["inputs"]) >= {"island", "bill_length_mm", "flipper_length_mm"}

    created = client.post("/api/v1/jobs", json=body)

    assert created.status_code == 202, created.text


def test_the_python_and_cli_snippets_send_the_same_row(client: TestClient) -> None:
    curl_row = json.loads(shlex.split(snippet(client, "curl").replace("\\\n", " "))[-1])["inputs"]
    python = snippet(client, "python")
    assert "from apot import Client" in python
    call = next(
        node
        for node in ast.walk(ast.parse(python))
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "predict"
    )
    assert [ast.literal_eval(arg) for arg in call.args] == ["penguins", curl_row]
    cli = shlex.split(snippet(client, "cli").replace("\\\n", " "))
    assert cli[:2] == ["apot", "predict"] and cli[cli.index("--model") + 1] == "penguins"
    assert json.loads(cli[cli.index("--json") + 1]) == curl_row


def test_a_pinned_version_page_pins_its_snippets(client: TestClient, registry: ModelRegistry) -> None:
    version = registry.get("penguins").version
    body = json.loads(shlex.split(snippet(client, "curl", f"/models/penguins?version={version}"))[-1])
    assert "version" not in body, "the default version is not pinned"


def test_the_csv_template_has_the_model_columns_and_is_accepted_as_an_upload(
    client: TestClient, registry: ModelRegistry, enqueue: RecordingEnqueue
) -> None:
    page = parse(client.get("/models/penguins").text)
    link = one(page, "a[download]")["href"]

    template = client.get(str(link))

    assert template.status_code == 200 and template.headers["content-type"].startswith("text/csv")
    assert "attachment" in template.headers["content-disposition"]
    header, example = list(csv.reader(io.StringIO(template.text)))
    assert header == registry.get("penguins").schema.names
    upload = client.post(
        "/api/v1/jobs/csv", files={"file": ("t.csv", template.content, "text/csv")}, data={"model": "penguins"}
    )
    assert upload.status_code == 202, upload.text
    enqueue.deliver(registry)
    job = client.get(f"/api/v1/jobs/{upload.json()['id']}").json()
    assert (job["status"], job["rows_done"], job["rows_failed"]) == ("succeeded", 1, 0), example


def test_the_api_reference_loads_swagger_ui_from_our_own_static_files(client: TestClient) -> None:
    page = parse(client.get("/docs").text)

    scripts = [str(tag.get("src", "")).removeprefix("http://testserver") for tag in page.select("script")]
    assert all(src.startswith("/static/") for src in scripts), "no CDN, and no inline script (the CSP refuses both)"
    assert "/static/swagger-ui/swagger-ui-bundle.js" in scripts and "/static/docs.js" in scripts
    assert one(page, "#swagger-ui")["data-openapi-url"] == "/openapi.json"
    for asset in ("/static/swagger-ui/swagger-ui-bundle.js", "/static/swagger-ui/swagger-ui.css", "/openapi.json"):
        assert client.get(asset).status_code == 200, asset
    assert client.get("/redoc").status_code == 404, "ReDoc would load from a CDN"
