"""Every `apot` command finds the same instance from any folder: relative paths mean the instance's, not the
current directory's."""

from __future__ import annotations

from pathlib import Path

import pytest

from webapp.config import CHECKOUT, Settings


@pytest.fixture(autouse=True)
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A command run from another folder (no .env there), with no path settings of the developer's."""
    monkeypatch.chdir(tmp_path)
    for variable in ("APOT_HOME", "APOT_DATABASE_URL", "APOT_MODELS_DIR"):
        monkeypatch.delenv(variable, raising=False)


def test_the_default_var_is_the_checkouts_wherever_a_command_runs() -> None:
    settings = Settings()
    assert settings.database_url == f"sqlite:///{CHECKOUT / 'var' / 'apot.db'}"
    assert settings.models_dir == CHECKOUT / "var" / "models"
    assert settings.var_dir == CHECKOUT / "var"


def test_apot_home_names_another_instance(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path / 'var' / 'apot.db'}"
    assert settings.models_dir == tmp_path / "var" / "models"


def test_absolute_paths_and_other_databases_are_left_as_they_are(tmp_path: Path) -> None:
    url = "postgresql+psycopg://apot@db.internal/apot"
    settings = Settings(home=tmp_path, database_url=url, models_dir=Path("/srv/models"))
    assert (settings.database_url, settings.models_dir) == (url, Path("/srv/models"))
    assert Settings(database_url="sqlite:////data/apot.db").database_url == "sqlite:////data/apot.db"
    assert Settings(database_url="sqlite:///:memory:").database_url == "sqlite:///:memory:"
