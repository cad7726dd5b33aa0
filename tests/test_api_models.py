"""GET /api/v1/models and /api/v1/models/{name}."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_models_are_listed_with_their_schema(client: TestClient) -> None:
    response = client.get("/api/v1/models")
    assert response.status_code == 200
    penguins, sizes = response.json()
    assert (sizes["name"], sizes["task"], "classes" in sizes) == ("sizes", "regression", False)
    assert penguins["name"] == "penguins"
    assert penguins["version"] == "1"
    assert penguins["task"] == "classification"
    assert penguins["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert [f["name"] for f in penguins["features"]][:3] == ["island", "bill_length_mm", "flipper_length_mm"]


def test_one_model_gives_its_input_schema(client: TestClient) -> None:
    features = {f["name"]: f for f in client.get("/api/v1/models/penguins").json()["features"]}
    assert features["island"] == {
        "name": "island",
        "type": "category",
        "required": True,
        "choices": ["Biscoe", "Dream", "Torgersen"],
    }
    assert features["body_mass_g"] == {
        "name": "body_mass_g",
        "type": "integer",
        "required": False,
        "min": 2700,
        "max": 6300,
    }


def test_unknown_model_is_404(client: TestClient) -> None:
    response = client.get("/api/v1/models/unicorns")
    assert response.status_code == 404
    assert "unicorns" in response.json()["detail"]


def test_unknown_version_is_404(client: TestClient) -> None:
    assert client.get("/api/v1/models/penguins", params={"version": "99"}).status_code == 404
