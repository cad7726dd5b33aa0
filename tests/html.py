"""Reading pages in tests by their structure, not by substrings."""

from __future__ import annotations

from bs4 import BeautifulSoup, Tag
from fastapi.testclient import TestClient


def parse(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def one(soup: BeautifulSoup | Tag, selector: str) -> Tag:
    found = soup.select(selector)
    assert len(found) == 1, f"expected one {selector!r}, found {len(found)}"
    return found[0]


def csrf_token(client: TestClient, page: str = "/") -> str:
    """Open a page as a browser would: the CSRF cookie lands in the client, the token comes from the page."""
    body = parse(client.get(page).text)
    return str(one(body, "body")["hx-headers"]).split('"')[3]
