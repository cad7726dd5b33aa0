"""compose.yaml and the Dockerfile agree with the code: settings it reads, commands it has, the paths they share.

Docker cannot run here, so this is what keeps the two files honest when a setting or a command changes.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from webapp.cli import cli
from webapp.config import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
APOT_SERVICES = {name: service for name, service in SERVICES.items() if service.get("build")}
SETTINGS = {f"APOT_{name.upper()}": name for name in Settings.model_fields}
APOT: Any = typer.main.get_command(cli)  # a group: its .commands are apot's subcommands


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (INSTRUCTION, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(maxsplit=1)[0].upper(), line.split(maxsplit=1)[1]) for line in lines]


def instruction(name: str) -> list[str]:
    return [arguments for found, arguments in dockerfile() if found == name]


def dockerfile_env() -> dict[str, str]:
    return dict(pair.split("=", 1) for arguments in instruction("ENV") for pair in shlex.split(arguments))


def interpolated(value: object) -> str:
    """A value as compose would pass it, with a stand-in for each variable the operator must set."""
    text = str(value)
    text = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", text)  # ${NAME:-default}
    return re.sub(r"\$\{\w+:\?[^}]*\}", "set-by-the-operator", text)  # ${NAME:?message}


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment as a mapping, so services can share one with a YAML merge"
    return {key: interpolated(value) for key, value in env.items()}


def test_the_services_a_deployment_needs_are_there() -> None:
    assert {"postgres", "redis", "migrate", "web", "worker", "reconciler"} <= set(SERVICES)
    assert "healthcheck" in SERVICES["postgres"]
    assert "healthcheck" in SERVICES["redis"]


@pytest.mark.parametrize("name", sorted(APOT_SERVICES))
def test_every_apot_variable_is_a_setting_with_a_valid_value(name: str) -> None:
    env = {key: value for key, value in environment(APOT_SERVICES[name]).items() if key.startswith("APOT_")}
    unknown = set(env) - set(SETTINGS)
    assert not unknown, f"{name} sets variables apot does not read: {sorted(unknown)}"
    Settings.model_validate({SETTINGS[key]: value for key, value in env.items()})  # raises on a bad value


@pytest.mark.parametrize("name", sorted(APOT_SERVICES))
def test_every_command_is_an_apot_command_with_valid_options(name: str) -> None:
    command, *arguments = APOT_SERVICES[name]["command"]
    assert command in APOT.commands, f"{name} runs `apot {command}`, which does not exist"
    APOT.commands[command].make_context(command, list(arguments))  # raises on an unknown option


def test_migrations_run_once_before_web_and_workers_start() -> None:
    assert SERVICES["migrate"]["command"] == ["migrate"]
    assert SERVICES["migrate"]["restart"] == "no"
    for name in ("web", "worker", "reconciler"):
        assert SERVICES[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}


def test_workers_can_be_scaled() -> None:
    worker = SERVICES["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Named volume -> path in the container."""
    return dict(volume.split(":")[:2] for volume in service.get("volumes", []))


def test_web_and_workers_share_the_models_volume_where_apot_looks_for_models() -> None:
    assert "models" in COMPOSE["volumes"]
    for name in ("web", "worker"):
        assert mounts(SERVICES[name])["models"] == environment(SERVICES[name])["APOT_MODELS_DIR"]
    assert mounts(SERVICES["web"])["models"] == dockerfile_env()["APOT_MODELS_DIR"]


def test_the_secret_key_must_come_from_the_environment() -> None:
    assert re.fullmatch(r"\$\{APOT_SECRET_KEY:\?.+\}", SERVICES["web"]["environment"]["APOT_SECRET_KEY"])


def test_web_listens_where_the_image_and_the_health_check_expect() -> None:
    web = environment(SERVICES["web"])
    (exposed,) = instruction("EXPOSE")
    assert web["APOT_HOST"] == "0.0.0.0", "reachable from outside its container"
    assert web["APOT_PORT"] == exposed == dockerfile_env()["APOT_PORT"]
    assert dockerfile_env()["APOT_HOST"] == "0.0.0.0"
    assert [port.split(":")[-1] for port in SERVICES["web"]["ports"]] == [exposed]
    probe = " ".join(SERVICES["web"]["healthcheck"]["test"])
    assert f"127.0.0.1:{exposed}/readyz" in probe


def test_the_image_runs_apot_as_a_user_other_than_root() -> None:
    assert instruction("ENTRYPOINT") == ['["apot"]']
    (default,) = instruction("CMD")
    assert default == '["web"]' and "web" in APOT.commands
    (user,) = instruction("USER")
    assert user not in ("root", "0")
