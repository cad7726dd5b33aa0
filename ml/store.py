"""The model store: one folder per model and version under APOT_MODELS_DIR, each a joblib file and its metadata.

Only the server's operators put files here (the joblib format can run code when loaded), and requests name
models only by looking them up in the scanned index, so no user input ever becomes a path.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import joblib
import pandas as pd
import sklearn

from ml.predict import is_classifier
from ml.schema import InputSchema, derive_schema

ARTIFACT = "model.joblib"
METADATA = "metadata.json"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

Task = Literal["classification", "regression"]


class ModelNotFound(LookupError):
    """No model (or no such version of it) in the store."""


class ModelIntegrityError(RuntimeError):
    """The model file on disk is not the one that was registered."""


@dataclass(frozen=True)
class ModelInfo:
    """What the metadata file says of one model version."""

    name: str
    version: str
    task: Task
    schema: InputSchema
    classes: list[Any] | None
    sha256: str
    sklearn_version: str
    created_at: str
    folder: Path

    def to_metadata(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "task": self.task,
            "features": self.schema.to_dict(),
            "classes": self.classes,
            "sha256": self.sha256,
            "sklearn_version": self.sklearn_version,
            "created_at": self.created_at,
        }

    @classmethod
    def from_metadata(cls, raw: dict[str, Any], folder: Path) -> ModelInfo:
        return cls(
            name=raw["name"],
            version=str(raw["version"]),
            task=raw["task"],
            schema=InputSchema.from_dict(raw["features"]),
            classes=raw.get("classes"),
            sha256=raw["sha256"],
            sklearn_version=raw.get("sklearn_version", "unknown"),
            created_at=raw.get("created_at", ""),
            folder=folder,
        )


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Order versions naturally, so that "10" comes after "9"."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"[.\-_]", version))


class ModelStore:
    """Reads the store's folder; safe to share between the threads of one process."""

    def __init__(self, root: Path, rescan_after: float = 2.0, cache_size: int = 8) -> None:
        self.root = root
        self._rescan_after = rescan_after
        self._scanned_at = float("-inf")
        self._index: dict[str, list[ModelInfo]] = {}
        self._cache_size = max(cache_size, 1)
        self._loaded: OrderedDict[tuple[str, str, str], Any] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()

    def all_models(self) -> list[ModelInfo]:
        """The default (newest) version of every model, by name."""
        index = self._scan()
        return [versions[-1] for _, versions in sorted(index.items())]

    def get(self, name: str, version: str | None = None) -> ModelInfo:
        """Look a model up by name, and by version when given; the newest version otherwise."""
        for index in (self._fresh_index(), self._scan()):  # a miss rescans once: a model just added is found
            versions = index.get(name, [])
            found = versions[-1:] if version is None else [v for v in versions if v.version == version]
            if found:
                return found[0]
        what = f"model {name!r}" if version is None else f"version {version!r} of model {name!r}"
        raise ModelNotFound(f"{what} is not in the model store")

    def load(self, info: ModelInfo) -> Any:
        """The fitted estimator, checked against its registered sha256 before it is loaded, then kept in memory;
        at most `cache_size` models stay loaded, the least recently used going first."""
        key = (info.name, info.version, info.sha256)
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
            path = info.folder / ARTIFACT
            digest = file_sha256(path)
            if digest != info.sha256:
                raise ModelIntegrityError(
                    f"model file of {info.name} {info.version} has sha256 {digest[:12]}…, "
                    f"registered {info.sha256[:12]}…: refusing to load it"
                )
            self._loaded[key] = estimator = joblib.load(path)
            while len(self._loaded) > self._cache_size:
                self._loaded.popitem(last=False)
            return estimator

    def loaded(self) -> list[tuple[str, str]]:
        """(name, version) of the models in memory, least recently used first."""
        with self._lock:
            return [(name, version) for name, version, _ in self._loaded]

    def save(self, estimator: Any, name: str, version: str, training: pd.DataFrame | None = None) -> ModelInfo:
        """Write a fitted estimator and its derived metadata as a new version, atomically."""
        if not NAME_PATTERN.match(name) or not NAME_PATTERN.match(version):
            raise ValueError(
                "names and versions are 1-64 lowercase letters, digits, '_' or '-', starting with a letter or digit"
            )
        schema = derive_schema(estimator, training)
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.root / name / version
        if target.exists():
            raise FileExistsError(f"{name} {version} is already in the store")
        target.parent.mkdir(exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=target.parent))
        try:
            joblib.dump(estimator, staging / ARTIFACT)
            classifier = is_classifier(estimator)
            info = ModelInfo(
                name=name,
                version=version,
                task="classification" if classifier else "regression",
                schema=schema,
                classes=[c.item() if hasattr(c, "item") else c for c in estimator.classes_] if classifier else None,
                sha256=file_sha256(staging / ARTIFACT),
                sklearn_version=sklearn.__version__,
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                folder=target,
            )
            (staging / METADATA).write_text(json.dumps(info.to_metadata(), indent=2) + "\n")
            os.rename(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self._scanned_at = float("-inf")
        return info

    def _fresh_index(self) -> dict[str, list[ModelInfo]]:
        if time.monotonic() - self._scanned_at > self._rescan_after:
            return self._scan()
        return self._index

    def _scan(self) -> dict[str, list[ModelInfo]]:
        index: dict[str, list[ModelInfo]] = {}
        for metadata in sorted(self.root.glob(f"*/*/{METADATA}")):
            folder = metadata.parent
            if folder.name.startswith("."):
                continue
            info = ModelInfo.from_metadata(json.loads(metadata.read_text()), folder)
            index.setdefault(info.name, []).append(info)
        for versions in index.values():
            versions.sort(key=lambda v: version_key(v.version))
        self._index, self._scanned_at = index, time.monotonic()
        return index


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
