"""Job creation is limited per API key and per user; one user's limit never touches another's."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from limits import parse

from tests.accounts import Account
from tests.html import csrf_token
from webapp.config import Settings
from webapp.http.ratelimit import Gcra, SubmissionLimits
from webapp.services.accounts import AccountService, Principal

SIZES = {"model": "sizes", "inputs": {"size": 2, "colour": "red"}}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.rate_limit_per_key = "3/minute"
    settings.rate_limit_per_user = "5/minute"
    return settings


def submit(client: TestClient, key: str) -> object:
    return client.post("/api/v1/jobs", json=SIZES, headers={"Authorization": f"Bearer {key}"})


def test_a_key_over_its_limit_gets_429_with_retry_after(anonymous: TestClient, member: Account, admin: Account) -> None:
    assert [submit(anonymous, member.key).status_code for _ in range(3)] == [202] * 3  # type: ignore[attr-defined]
    refused = submit(anonymous, member.key)
    assert refused.status_code == 429  # type: ignore[attr-defined]
    assert 1 <= int(refused.headers["retry-after"]) <= 60  # type: ignore[attr-defined]
    headers = refused.headers  # type: ignore[attr-defined]
    assert (headers["ratelimit-limit"], headers["ratelimit-remaining"]) == ("3", "0")
    assert headers["ratelimit-reset"] == headers["retry-after"] and headers["ratelimit-policy"] == "3;w=60"
    assert "at most 3 per 1 minute" in refused.json()["detail"]  # type: ignore[attr-defined]
    # Reading is not limited, and another user is not affected.
    assert anonymous.get("/api/v1/jobs", headers=member.bearer).status_code == 200
    assert submit(anonymous, admin.key).status_code == 202  # type: ignore[attr-defined]


def test_a_user_with_several_keys_meets_the_user_limit(
    anonymous: TestClient, client: TestClient, member: Account, registry: object
) -> None:
    second = AccountService(registry.sessions).create_key(member.principal.user_id, "second").secret  # type: ignore[attr-defined]
    codes = [submit(anonymous, key).status_code for key in [member.key] * 3 + [second] * 2]  # type: ignore[attr-defined]
    assert codes == [202] * 5
    assert submit(anonymous, second).status_code == 429  # type: ignore[attr-defined]
    # The pages count against the same user.
    token = csrf_token(client, "/models/sizes")
    page = client.post("/models/sizes/jobs", data={"csrf_token": token, "size": "2", "colour": "red"})
    assert page.status_code == 429 and page.headers["retry-after"]


def test_the_default_limits_let_a_script_that_waits_for_its_answers_go_as_fast_as_a_web_process_can() -> None:
    limits = SubmissionLimits(Settings().rate_limit_per_user, Settings().rate_limit_per_key)
    assert limits.per_key is not None and limits.per_user is not None
    principal = Principal(uuid.uuid4(), "script", "member", 1, uuid.uuid4())
    for _ in range(1000):  # a second of the most one web process could take in (a job costs it far over 1 ms)
        limits.check(principal)


def test_a_bucket_refills_evenly_over_its_window() -> None:
    bucket = Gcra(parse("3/minute"))
    identity = uuid.uuid4()
    assert [bucket.hit(identity) for _ in range(3)] == [None] * 3
    assert bucket.hit(identity) == pytest.approx(20, abs=1), "one more every 20 s"
