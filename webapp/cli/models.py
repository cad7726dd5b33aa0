"""`apot models ...`: register and manage models from the command line (the only way to register joblib files)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ml.store import FileFormat
    from webapp.services.models import ModelRegistry

models_cli = typer.Typer(help="Register, list and manage models.", no_args_is_help=True)


@contextmanager
def _registry() -> Iterator[ModelRegistry]:
    from webapp.config import get_settings
    from webapp.services.models import open_registry

    with open_registry(get_settings()) as registry:
        yield registry


def _fail(message: str) -> typer.Exit:
    typer.echo(f"apot: {message}", err=True)
    return typer.Exit(1)


@models_cli.command("add")
def add(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A joblib (.joblib, .pkl) or .skops file")],
    name: Annotated[str, typer.Option(help="Model name: lowercase letters, digits, '_' and '-'")],
    version: Annotated[str | None, typer.Option(help="Version; default: one more than the highest number")] = None,
    metadata: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help='JSON with "features": names or descriptions')
    ] = None,
    sample: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="CSV of typical inputs: categories and ranges")
    ] = None,
    trust: Annotated[
        list[str] | None, typer.Option(help="A type a .skops file needs that skops does not trust by default (repeat)")
    ] = None,
) -> None:
    """Check a fitted estimator or Pipeline, derive its input schema and register it as a new version."""
    import pandas as pd

    from ml.schema import SchemaError
    from ml.store import UntrustedModelFile

    file_format: FileFormat = "skops" if path.suffix == ".skops" else "joblib"
    try:
        meta = json.loads(metadata.read_text()) if metadata else None
        training = pd.read_csv(sample) if sample else None
        with _registry() as registry:
            info = registry.register(
                path.read_bytes(), file_format, name, version, training=training, metadata=meta, trusted=trust or []
            )
    except UntrustedModelFile as exc:
        raise _fail(f"{exc}; if you trust them, add --trust TYPE for each") from exc
    except (SchemaError, ValueError, FileExistsError) as exc:
        raise _fail(str(exc)) from exc
    targets = f", {len(info.targets)} targets" if info.targets else ""
    typer.echo(f"registered {info.name} {info.version}: {info.task}, {len(info.schema.features)} features{targets}")
    if info.version_warning:
        typer.echo(f"warning: {info.version_warning}")
    if info.is_default:
        typer.echo("it is the model's default version")
    else:
        typer.echo(f"to make it the default: apot models set-default {name} {info.version}")


@models_cli.command("list")
def list_models() -> None:
    """Every model with its versions; * marks the default."""
    with _registry() as registry:
        models = registry.all_models()
        if not models:
            typer.echo("no models registered: apot train-demo, or apot models add PATH --name NAME")
        for model in models:
            versions = ", ".join(f"{v.version}{'*' if v.is_default else ''}" for v in registry.versions(model.name))
            typer.echo(f"{model.name}\t{model.task}\t{versions}")


@models_cli.command("show")
def show(name: str, version: Annotated[str | None, typer.Option()] = None) -> None:
    """One version (the default unless --version): its schema, classes and file."""
    import sklearn

    from ml.store import ModelNotFound

    try:
        with _registry() as registry:
            info = registry.get(name, version)
    except ModelNotFound as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"{info.name} {info.version}{' (default)' if info.is_default else ''}: {info.task}")
    typer.echo(f"file: {info.path} ({info.file_format}, {info.size_bytes:,} bytes, sha256 {info.sha256})")
    mismatch = "" if info.sklearn_version == sklearn.__version__ else f" (installed: {sklearn.__version__})"
    typer.echo(f"saved with scikit-learn {info.sklearn_version}{mismatch}")
    if info.classes:
        typer.echo(f"classes: {', '.join(map(str, info.classes))}")
    for feature in info.schema.to_dict():
        typer.echo("  " + json.dumps(feature))


@models_cli.command("set-default")
def set_default(name: str, version: str) -> None:
    """Make VERSION the one used when a request names no version."""
    from ml.store import ModelNotFound

    try:
        with _registry() as registry:
            registry.set_default(name, version)
    except ModelNotFound as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"{name} {version} is now the default")


@models_cli.command("remove")
def remove(
    name: str,
    version: Annotated[str | None, typer.Option(help="Only this version; every version when left out")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask")] = False,
) -> None:
    """Forget a model version (or every version) and delete its file; past jobs keep showing what served them."""
    from ml.store import ModelNotFound
    from webapp.services.models import ModelInUse

    what = f"{name} {version}" if version else f"every version of {name}"
    if not yes and not typer.confirm(f"Remove {what}?"):
        raise typer.Exit(1)
    try:
        with _registry() as registry:
            removed = registry.remove(name, version)
    except (ModelNotFound, ModelInUse) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"removed {name} {', '.join(removed)}")
