"""The API follows the HTTP conventions clients expect: problem details, 400/405 where due, ETag on model metadata,
Link headers on pages, and an OpenAPI document a generator can use as it is."""

from __future__ import annotations

from http import HTTPStatus

from fastapi.testclient import TestClient

PENGUIN = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230}
PROBLEM = "application/problem+json"


def test_errors_are_problem_details_keeping_fastapis_detail(client: TestClient) -> None:
    invalid = client.post("/api/v1/jobs", json={"model": "penguins", "inputs": {**PENGUIN, "island": "Mars"}})
    missing = client.get("/api/v1/models/unicorns")
    unreadable = client.post("/api/v1/jobs", content=b"{bad", headers={"content-type": "application/json"})

    assert invalid.status_code == 422 and invalid.headers["content-type"] == PROBLEM
    body = invalid.json()
    assert (body["type"], body["title"], body["status"]) == ("about:blank", HTTPStatus(422).phrase, 422)
    assert body["detail"][0]["loc"] == ["body", "inputs", "island"]
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    assert missing.json()["detail"] == "model 'unicorns' is not registered"
    assert unreadable.status_code == 400 and unreadable.json()["title"] == "Bad Request"


def test_get_on_the_csv_upload_is_405_with_allow(client: TestClient) -> None:
    response = client.get("/api/v1/jobs/csv")

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.headers["content-type"] == PROBLEM
    # Two routes share /api/v1/jobs: a 405 there names the methods of both.
    assert {"GET", "POST"} <= set(client.delete("/api/v1/jobs").headers["allow"].split(", "))


def test_model_metadata_has_an_etag_that_makes_a_304(client: TestClient) -> None:
    for path in ("/api/v1/models/penguins", "/api/v1/models"):
        first = client.get(path)
        etag = first.headers["etag"]
        again = client.get(path, headers={"If-None-Match": etag})
        other = client.get(path, headers={"If-None-Match": '"something-else"'})

        assert first.status_code == 200 and etag.startswith('"')
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        assert other.status_code == 200 and other.json() == first.json()
    assert client.get("/api/v1/models/sizes").headers["etag"] != client.get("/api/v1/models/penguins").headers["etag"]


def test_job_pages_link_to_the_next_page(client: TestClient) -> None:
    ids = [client.post("/api/v1/jobs", json={"model": "penguins", "inputs": PENGUIN}).json()["id"] for _ in range(3)]

    first = client.get("/api/v1/jobs", params={"limit": 2, "model": "penguins"})
    link = first.headers["link"]
    assert link.endswith('>; rel="next"') and "model=penguins" in link
    following = client.get(link[1 : link.index(">")])

    assert [j["id"] for j in first.json()["items"] + following.json()["items"]] == ids[::-1]
    assert "link" not in following.headers


def test_openapi_declares_the_key_short_ids_and_each_models_inputs(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    operations = {op["operationId"]: op for path in doc["paths"].values() for op in path.values()}
    schemas = doc["components"]["schemas"]

    assert doc["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    assert operations["create_job"]["security"] == [{"apiKey": []}]
    assert {"create_job", "get_job", "list_jobs", "cancel_job", "create_csv_job", "get_job_results"} <= set(operations)
    assert {"list_models", "get_model"} <= set(operations)
    assert schemas["PenguinsInputs"]["properties"]["island"] == {"enum": ["Biscoe", "Dream", "Torgersen"]}
    assert "island" in schemas["PenguinsInputs"]["required"]
    assert schemas["SizesInputs"]["properties"]["size"]["type"] == "number"
    assert {"$ref": "#/components/schemas/PenguinsInputs"} in schemas["JobCreate"]["properties"]["inputs"]["anyOf"]
    created = operations["create_job"]["responses"]
    assert set(created["422"]["content"]) == {PROBLEM} and set(created["400"]["content"]) == {PROBLEM}
    assert "RateLimit-Remaining" in created["429"]["headers"]
    assert "304" in operations["get_model"]["responses"]
    assert not any(path.startswith("/v2") for path in doc["paths"])  # the protocol publishes its own document
