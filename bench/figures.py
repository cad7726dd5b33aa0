"""The rows of `make bench`'s table: a measure, apot's figure, its comparison point and how they relate."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    measure: str
    apot: str
    compared_with: str = ""
    ratio: str = ""
    target: str = ""


def ms(seconds: float) -> str:
    return "—" if math.isnan(seconds) else f"{seconds * 1000:.1f} ms"


def times(value: float) -> str:
    return "—" if math.isnan(value) or math.isinf(value) else f"{value:.2f}x"


def table(figures: list[Figure]) -> str:
    lines = [
        "| measure | apot | compared with | ratio | target |",
        "|---|---|---|---|---|",
        *(f"| {f.measure} | {f.apot} | {f.compared_with} | {f.ratio} | {f.target} |" for f in figures),
    ]
    return "\n".join(lines)
