"""The `Prefer` request header (RFC 7240): the one preference apot honours is `wait=S`."""

from __future__ import annotations

import math


def preferred_wait(header: str | None, longest: float) -> float | None:
    """Seconds the client is willing to wait for the answer, at most `longest`; None when it did not say so.

    Preferences are separated by commas, may carry parameters after `;`, and names are case-insensitive;
    one that cannot be understood is ignored, as the RFC asks.
    """
    if not header:
        return None
    for preference in header.split(","):
        name, _, value = preference.split(";", 1)[0].partition("=")
        if name.strip().lower() != "wait":
            continue
        try:
            seconds = float(value.strip().strip('"'))
        except ValueError:
            return None
        return min(seconds, longest) if math.isfinite(seconds) and seconds >= 0 else None
    return None
