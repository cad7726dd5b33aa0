"""Opaque keyset cursors: the (created_at, id) of the last row a page showed, and the filters that page had."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime


class BadCursor(ValueError):
    """The cursor was not made by us (or was cut short), or was made for other filters."""


def encode_cursor(created_at: datetime, job_id: uuid.UUID, filters: str) -> str:
    """`filters` names the filters of the page (HistoryFilter.key): the cursor is honoured only with the same ones,
    since the next page of one filter, asked for with another, would skip or repeat jobs."""
    raw = json.dumps([created_at.isoformat(), str(job_id), filters]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, filters: str) -> tuple[datetime, uuid.UUID]:
    try:
        created_at, job_id, made_for = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        moment = datetime.fromisoformat(created_at)
        if moment.tzinfo is None:
            raise ValueError("naive timestamp")
        found = moment, uuid.UUID(job_id)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise BadCursor("cursor is not one this server returned as next_cursor") from exc
    if made_for != filters:
        raise BadCursor("cursor was returned for other filters: send it with the filters of the page it came from")
    return found
