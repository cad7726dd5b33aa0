"""The history's search takes the short ids the pages show: a job whose id starts with them, among one's own."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.accounts import Account
from tests.factories import add_job
from tests.html import one, parse
from webapp.services.job_ids import id_range


def notice(client: TestClient, find: str) -> str:
    return one(parse(client.get("/jobs", params={"find": find}).text), ".notice").text


def test_a_short_id_opens_its_job(client: TestClient, engine: Engine, member: Account) -> None:
    mine = uuid.UUID("9fb026ef-1111-4111-8111-111111111111")
    add_job(engine, id=mine, owner_id=member.principal.user_id)
    add_job(engine, id=uuid.UUID("9fb026f0-0000-4000-8000-000000000000"), owner_id=member.principal.user_id)

    found = client.get("/jobs", params={"find": "9FB026EF"}, follow_redirects=False)

    assert found.status_code == 303 and found.headers["location"].endswith(f"/jobs/{mine}")


def test_a_prefix_of_several_ids_asks_for_more_and_one_of_none_says_so(
    client: TestClient, engine: Engine, member: Account
) -> None:
    for tail in ("1", "2"):
        add_job(engine, id=uuid.UUID(f"abcd0000-0000-4000-8000-00000000000{tail}"), owner_id=member.principal.user_id)
    assert "type more" in notice(client, "abcd")
    assert "No job's id starts with 1234abcd" in notice(client, "1234abcd")


def test_another_users_job_is_not_found_by_its_short_id(client: TestClient, engine: Engine) -> None:
    add_job(engine, id=uuid.UUID("77777777-0000-4000-8000-000000000000"))  # nobody's: not the member's
    assert "No job's id starts with 77777777" in notice(client, "77777777")


def test_a_range_covers_exactly_the_ids_with_that_start() -> None:
    low, high = id_range("9fb0-26ef") or (None, None)
    assert str(low) == "9fb026ef-0000-0000-0000-000000000000"
    assert str(high) == "9fb026ef-ffff-ffff-ffff-ffffffffffff"
    assert id_range("abc") is None and id_range("xyz12345") is None
