"""Every setting is in the README's configuration table, with its real default."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from webapp.config import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
ROWS = dict(re.findall(r"^\| `(APOT_[A-Z_]+)` \| (.*?) \|", README, flags=re.MULTILINE))


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_setting_is_documented_with_its_default(name: str) -> None:
    variable = f"APOT_{name.upper()}"
    assert variable in ROWS, f"{variable} is missing from the README's configuration table"
    default = Settings.model_fields[name].default
    expected = "empty" if default in ("", None) else f"`{default}`"
    assert ROWS[variable] == expected
