"""The README's map of the house matches the tree, and the house keeps its shape as code lands in it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE = ["apot", "webapp", "tasks", "ml"]
LONGEST_MODULE = 300  # lines; split by concept before this
MOST_ROOT_MODULES = 10


def built_section() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## How apot is built")
    end = readme.find("\n## ", start + 1)
    return readme[start : end if end != -1 else None]


def packages() -> list[str]:
    found = []
    for top in CODE:
        for init in sorted((ROOT / top).rglob("__init__.py")):
            found.append(init.parent.relative_to(ROOT).as_posix() + "/")
    return found


def test_every_package_has_a_paragraph_in_the_readme_map() -> None:
    section = built_section()
    named = set(re.findall(r"\*\*`([\w/]+/)`", section))

    assert [package for package in packages() if package not in named] == []


def test_every_folder_the_map_names_exists() -> None:
    named = re.findall(r"\*\*`([\w/]+/)`", built_section())

    assert [folder for folder in named if not (ROOT / folder).is_dir()] == []


def test_the_root_of_webapp_holds_only_the_core() -> None:
    modules = sorted(path.name for path in (ROOT / "webapp").glob("*.py"))

    assert len(modules) <= MOST_ROOT_MODULES, modules


def test_no_module_grows_past_the_size_of_one_concept() -> None:
    long = {
        path.relative_to(ROOT).as_posix(): lines
        for top in CODE
        for path in (ROOT / top).rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > LONGEST_MODULE
    }

    assert long == {}
