"""Request headers the API reads, declared once so that the OpenAPI document describes them the same way."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header

IdempotencyKey = Annotated[
    str | None,
    Header(
        max_length=255,
        description="Any unique string, e.g. a UUID the client made. A retry with the same key returns the job the "
        "first request made (whatever the retry's body), so a request repeated after a lost answer scores once.",
    ),
]
