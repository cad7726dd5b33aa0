"""Model files under APOT_MODELS_DIR: written once at registration, checked against their sha256 before every load.

The registry of what exists (names, versions, schemas, the default version) lives in the database; this module only
handles bytes on disk. joblib files can run code when loaded, so only the server's operators register them (from the
command line); files uploaded through the dashboard must be skops files, loaded with skops' trusted-type check.
Names and versions are validated before they become part of a path.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import os
import re
import shutil
import tempfile
import threading
import time
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal

from ml.predict import Output
from ml.schema import InputSchema

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# Model libraries apot knows the install line of: the extras in pyproject.toml.
EXTRAS = {"lightgbm": "apot[lightgbm]", "xgboost": "apot[xgboost]", "catboost": "catboost"}
# The state of every scikit-learn estimator holds "_sklearn_version": "1.5.2", pickled as a short string.
VERSION_IN_PICKLE = re.compile(rb"_sklearn_version(?:\x94)?\x8c([\x01-\x20])", re.DOTALL)

# A skops file is a zip archive: what it may inflate to, so that a small upload cannot take the web server's (or
# every worker's) memory. Checked from the archive's directory before anything is inflated; Python's zipfile never
# inflates a member past the size the directory declares.
SKOPS_MAX_UNCOMPRESSED_BYTES = 256 * 1024 * 1024
SKOPS_MAX_MEMBERS = 10_000

Task = Literal["classification", "regression"]
FileFormat = Literal["joblib", "skops"]


class ModelNotFound(LookupError):
    """No model (or no such version of it) is registered."""


class ModelIntegrityError(RuntimeError):
    """The model file on disk is not the one that was registered."""


class ModelLoadError(RuntimeError):
    """This process cannot load the model file (a package missing, another scikit-learn): the message says which."""


class UnreadableModelFile(ValueError):
    """A file that is not a model apot can read; the message says why, for the person who sent it."""


class UntrustedModelFile(ValueError):
    """A skops file that would need types outside skops' trusted set to load."""

    def __init__(self, types: list[str]) -> None:
        super().__init__(f"the file needs types that are not trusted: {', '.join(types)}")
        self.types = types


@dataclass(frozen=True)
class ModelInfo:
    """One registered version of a model."""

    name: str
    version: str
    task: Task
    schema: InputSchema
    classes: list[Any] | None
    sha256: str
    size_bytes: int
    sklearn_version: str
    file_format: FileFormat
    is_default: bool
    registered_at: datetime | None
    path: Path
    # Per feature, what scored rows are compared with for drift (ml.drift).
    reference: dict[str, Any] = field(default_factory=dict)
    targets: list[Output] | None = None  # a multi-output model's targets; None for one target
    # Types outside skops' default trusted set that an admin trusted for this file (by its sha256) when adding it.
    trusted_types: list[str] = field(default_factory=list)

    @property
    def outputs(self) -> list[Output]:
        """What the model predicts, per target: one unnamed output unless it has several targets."""
        return self.targets or [Output("prediction", self.classes if self.task == "classification" else None)]

    @property
    def version_warning(self) -> str | None:
        """Said wherever the model is shown when the scikit-learn it was saved with is not the one serving it."""
        serving = sklearn_version()
        if self.sklearn_version == serving:
            return None
        return (
            f"saved with scikit-learn {self.sklearn_version}, this server runs {serving}: its "
            f"predictions may differ from those it gave where it was trained; re-save it with {serving}"
        )


@cache
def sklearn_version() -> str:
    """The installed scikit-learn's version, read without importing it (seconds the web server need not spend)."""
    return importlib.metadata.version("scikit-learn")


def check_name(value: str, what: str) -> str:
    if not NAME_PATTERN.match(value):
        raise ValueError(f"{what} {value!r} is not allowed: use 1-64 lowercase letters, digits, '_' or '-'")
    return value


class ModelFiles:
    """The files of every model version; safe to share between the threads of one process."""

    def __init__(
        self, root: Path, cache_size: int = 8, on_load: Callable[[ModelInfo, float], None] | None = None
    ) -> None:
        self.root = root
        self._cache_size = max(cache_size, 1)
        # Told the seconds each load from disk took (workers export them as a metric); cache hits are not loads.
        self._on_load = on_load
        self._loaded: OrderedDict[tuple[str, str, str], Any] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()

    def path_for(self, name: str, version: str, file_format: FileFormat) -> Path:
        return self.root / check_name(name, "model name") / check_name(version, "version") / f"model.{file_format}"

    def write(self, name: str, version: str, file_format: FileFormat, data: bytes) -> Path:
        """Store the bytes of a new version atomically; an existing version is never overwritten."""
        target = self.path_for(name, version, file_format)
        if target.parent.exists():
            raise FileExistsError(f"{name} {version} already has a file in the store")
        target.parent.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=target.parent.parent))
        try:
            (staging / target.name).write_bytes(data)
            os.rename(staging, target.parent)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target

    def remove(self, name: str, version: str) -> None:
        folder = self.root / check_name(name, "model name") / check_name(version, "version")
        shutil.rmtree(folder, ignore_errors=True)
        with self._lock:
            for key in [k for k in self._loaded if k[:2] == (name, version)]:
                del self._loaded[key]

    def load(self, info: ModelInfo) -> Any:
        """The fitted estimator, checked against its registered sha256 before it is loaded, then kept in memory;
        at most `cache_size` models stay loaded, the least recently used going first."""
        key = (info.name, info.version, info.sha256)
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
            started = time.perf_counter()
            data = info.path.read_bytes()
            digest = sha256_of(data)
            if digest != info.sha256:
                raise ModelIntegrityError(
                    f"model file of {info.name} {info.version} has sha256 {digest[:12]}…, "
                    f"registered {info.sha256[:12]}…: refusing to load it"
                )
            from sklearn.exceptions import InconsistentVersionWarning

            with warnings.catch_warnings():
                # A version mismatch was recorded at registration and is shown with the model; said once there,
                # not in a log line per load.
                warnings.simplefilter("ignore", InconsistentVersionWarning)
                try:
                    estimator = read_estimator(data, info.file_format, info.trusted_types)
                except Exception as exc:  # a worker set up unlike the server that registered the model
                    raise ModelLoadError(f"this worker cannot load the model: {why_not_loaded(data, exc)}") from exc
            self._loaded[key] = estimator
            if self._on_load is not None:
                self._on_load(info, time.perf_counter() - started)
            while len(self._loaded) > self._cache_size:
                self._loaded.popitem(last=False)
            return estimator

    def loaded(self) -> list[tuple[str, str]]:
        """(name, version) of the models in memory, least recently used first."""
        with self._lock:
            return [(name, version) for name, version, _ in self._loaded]


def read_estimator(data: bytes, file_format: FileFormat, trusted: Sequence[str] = ()) -> Any:
    """Turn a model file's bytes into an estimator. A skops file loads only if every type in it is on skops'
    default trusted list or in `trusted` (types an admin looked at and trusted for this file)."""
    # Imported on the first load: the web server reads model files only when one is added.
    if file_format == "skops":
        import skops.io as sio

        check_skops_archive(data)
        try:
            needed = sio.get_untrusted_types(data=data)
        except Exception as exc:  # a crafted file can fail skops' parser in any way: each is a bad file
            raise UnreadableModelFile(f"the file is not a readable skops model ({type(exc).__name__})") from exc
        refused = sorted(set(needed) - set(trusted))
        if refused:
            raise UntrustedModelFile(refused)
        try:
            return sio.loads(data, trusted=needed or None)
        except ImportError:  # a package the model needs: why_not_loaded names it
            raise
        except Exception as exc:
            raise UnreadableModelFile(f"the skops model cannot be loaded ({type(exc).__name__}: {exc})"[:500]) from exc
    import joblib

    return joblib.load(io.BytesIO(data))


def why_not_loaded(data: bytes, exc: BaseException) -> str:
    """One line on why a model file does not load here: the package to install, or the scikit-learn it needs."""
    package = (exc.name or "").split(".")[0] if isinstance(exc, ModuleNotFoundError) else ""
    if package in EXTRAS:
        return (
            f"the model needs the package {package} on the server and on every worker: pip install '{EXTRAS[package]}'"
        )
    text = str(exc).strip()
    reason = f"{type(exc).__name__}: {text.splitlines()[0] if text else 'no message'}"
    saved, serving = saved_sklearn_version(data), sklearn_version()
    if saved and saved != serving:
        return (
            f"it was saved with scikit-learn {saved}, this server runs {serving}: re-save it with "
            f"{serving} or install scikit-learn=={saved} ({reason})"
        )
    return f"the file cannot be loaded: {reason}"


def saved_sklearn_version(data: bytes) -> str | None:
    """The scikit-learn version an estimator's pickled state records, found without running the pickle (joblib
    puts array bytes between its opcodes, so a pickle disassembler cannot read it either): None when not found."""
    found = VERSION_IN_PICKLE.search(data)
    if found is None:
        return None
    length = found.group(1)[0]
    return data[found.end() : found.end() + length].decode("ascii", "replace")


def check_skops_archive(data: bytes) -> None:
    """Refuse what is not a zip archive with a skops schema, or would inflate past the limits above."""
    try:
        members = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError) as exc:
        raise UnreadableModelFile("the file is not a skops model (a skops file is a zip archive)") from exc
    if len(members) > SKOPS_MAX_MEMBERS:
        raise UnreadableModelFile(f"the archive has {len(members):,} members; at most {SKOPS_MAX_MEMBERS:,} are read")
    inflated = sum(member.file_size for member in members)
    if inflated > SKOPS_MAX_UNCOMPRESSED_BYTES:
        raise UnreadableModelFile(
            f"the archive inflates to {inflated / 2**20:,.0f} MiB; at most {SKOPS_MAX_UNCOMPRESSED_BYTES // 2**20} MiB "
            "are read (a larger model can be registered by the server's operators with apot models add)"
        )
    if "schema.json" not in {member.filename for member in members}:
        raise UnreadableModelFile("the archive has no schema.json, so it is not a skops model")


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
