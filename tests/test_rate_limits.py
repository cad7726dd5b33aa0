"""Job creation is limited per API key and per user; one user's limit never touches another's."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.accounts import Account
from tests.html import csrf_token
from webapp.config import Settings
from webapp.services.accounts import AccountService

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
