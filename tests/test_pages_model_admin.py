"""Admins set a model's default version and remove versions from its page; members cannot; removal waits for the jobs
queued or running on a version. Features show the descriptions and units their metadata gives (demos ship theirs)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.factories import add_job
from tests.html import csrf_token, one, parse
from tests.models import sizes, sizes_v2
from webapp.models import Job
from webapp.services.models import ModelInUse, ModelRegistry, ensure_demos


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


def test_the_form_and_the_api_show_what_the_metadata_says_of_each_feature(
    client: TestClient, registry: ModelRegistry
) -> None:
    model = sizes(3)
    metadata = {"descriptions": {"size": "Length of the box's longest side"}, "units": {"size": "cm"}}
    registry.register(model.data, "joblib", "sizes", "labelled", training=model.training, metadata=metadata)
    page = parse(client.get("/models/sizes", params={"version": "labelled"}).text)
    assert one(page, "label[for=f-size]").text.startswith("size (cm)")
    assert one(page, "#f-size-hint").text.startswith("Length of the box's longest side.")
    assert "Length of the box's longest side" in one(page, "table.features").text
    features = client.get("/api/v1/models/sizes", params={"version": "labelled"}).json()["features"]
    assert {"name": "size", "unit": "cm"}.items() <= features[0].items()


def test_the_demos_are_registered_with_their_descriptions(registry: ModelRegistry) -> None:
    assert [m.name for m in ensure_demos(registry)] == ["diabetes"], "penguins is there already"
    s5 = next(f for f in registry.get("diabetes").schema.features if f.name == "s5")
    assert s5.description == "ltg: log of the serum triglycerides level"


def test_an_admin_compares_two_versions_on_the_newest_finished_job_of_the_first(
    admin_client: TestClient, registry: ModelRegistry, engine: Engine
) -> None:
    sizes_v2(registry)
    token = csrf_token(admin_client, "/models/sizes")
    form = {"csrf_token": token, "old": "1", "new": "2"}
    none_yet = admin_client.post("/models/sizes/compare", data=form, follow_redirects=False)
    assert none_yet.status_code == 409 and "no finished job of sizes 1" in none_yet.text

    add_job(engine, status="failed", inputs=[{"size": 9, "colour": "red"}])
    add_job(engine, inputs=[{"size": 2, "colour": "red"}])
    started = admin_client.post("/models/sizes/compare", data=form, follow_redirects=False)
    assert started.status_code == 303 and started.headers["location"].endswith("/compare")
    with Session(engine) as session:
        rerun = session.scalars(select(Job).where(Job.compare_to.is_not(None))).one()
        compared = session.get(Job, rerun.compare_to)
    assert compared is not None and (compared.status, compared.inputs) == ("succeeded", [{"size": 2, "colour": "red"}])
    assert (rerun.model_version, rerun.inputs) == ("2", [{"size": 2, "colour": "red"}])
    same = admin_client.post("/models/sizes/compare", data={**form, "new": "1"}, follow_redirects=False)
    assert same.status_code == 409


def test_members_cannot_compare_versions_from_the_model_page(client: TestClient, registry: ModelRegistry) -> None:
    sizes_v2(registry)
    page = parse(client.get("/models/sizes").text)
    assert not page.select("form.compare-versions")
    token = csrf_token(client, "/models/sizes")
    form = {"csrf_token": token, "old": "1", "new": "2"}
    assert client.post("/models/sizes/compare", data=form, follow_redirects=False).status_code == 403
    assert client.post("/models/sizes/compare", data={**form, "csrf_token": "0" * 64}).status_code == 403
