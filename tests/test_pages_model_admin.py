"""Admins set a model's default version and remove versions from its page; members cannot; removal waits for the jobs
queued or running on a version."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.factories import add_job
from tests.html import csrf_token, parse
from tests.models import sizes_v2
from webapp.services.models import ModelInUse, ModelRegistry


def post(client: TestClient, path: str, token: str | None = None) -> object:
    data = {"csrf_token": token if token is not None else csrf_token(client, "/models/sizes")}
    return client.post(path, data=data, follow_redirects=False)


def test_an_admin_makes_another_version_the_default(admin_client: TestClient, registry: ModelRegistry) -> None:
    sizes_v2(registry)
    page = parse(admin_client.get("/models/sizes").text)
    assert [b.text for b in page.select("table.versions button")] == ["Make default", "Remove", "Remove"]

    made = post(admin_client, "/models/sizes/versions/2/default")
    assert made.status_code == 303 and made.headers["location"].endswith("/models/sizes")  # type: ignore[attr-defined]
    assert registry.get("sizes").version == "2"
    assert post(admin_client, "/models/sizes/versions/9/default").status_code == 404  # type: ignore[attr-defined]


def test_an_admin_removes_a_version_unless_jobs_wait_for_it(
    admin_client: TestClient, registry: ModelRegistry, engine: Engine
) -> None:
    sizes_v2(registry)
    page = parse(admin_client.get("/models/sizes").text)
    assert all(form.get("data-confirm") for form in page.select("form[action$='/remove']")), "asks first"

    add_job(engine, status="queued", model_version="2")
    refused = post(admin_client, "/models/sizes/versions/2/remove")
    assert refused.status_code == 409 and "1 job is queued or running" in refused.text  # type: ignore[attr-defined]
    assert [v.version for v in registry.versions("sizes")] == ["2", "1"]

    removed = post(admin_client, "/models/sizes/versions/1/remove")
    assert removed.status_code == 303 and removed.headers["location"].endswith("/models/sizes")  # type: ignore[attr-defined]
    assert [v.version for v in registry.versions("sizes")] == ["2"] and registry.get("sizes").version == "2"


def test_removing_the_last_version_goes_back_to_the_models(admin_client: TestClient, registry: ModelRegistry) -> None:
    removed = post(admin_client, "/models/sizes/versions/1/remove")
    assert removed.status_code == 303 and removed.headers["location"].endswith("/")  # type: ignore[attr-defined]
    assert "sizes" not in [m.name for m in registry.all_models()]


def test_the_registry_refuses_to_remove_a_version_with_running_jobs(registry: ModelRegistry, engine: Engine) -> None:
    add_job(engine, status="running")
    add_job(engine, status="queued")
    with pytest.raises(ModelInUse, match="2 jobs are queued or running on sizes 1"):
        registry.remove("sizes")
    add_job(engine, status="succeeded", model_version="1")
    assert registry.get("sizes").version == "1"


@pytest.mark.parametrize("path", ["/models/sizes/versions/1/default", "/models/sizes/versions/1/remove"])
def test_members_cannot_manage_versions(client: TestClient, registry: ModelRegistry, path: str) -> None:
    assert not parse(client.get("/models/sizes").text).select("table.versions button"), "no buttons for members"
    assert post(client, path).status_code == 403  # type: ignore[attr-defined]
    assert registry.get("sizes").version == "1"


@pytest.mark.parametrize("path", ["/models/sizes/versions/1/default", "/models/sizes/versions/1/remove"])
def test_version_actions_need_the_csrf_token(admin_client: TestClient, registry: ModelRegistry, path: str) -> None:
    assert post(admin_client, path, token="0" * 64).status_code == 403  # type: ignore[attr-defined]
    assert registry.get("sizes").version == "1"
