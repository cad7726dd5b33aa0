"""The model registry: which models and versions exist, which is the default, and how they have served."""

from __future__ import annotations

import io
import statistics
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from ml.drift import Reference, build_reference, reference_or_default
from ml.predict import outputs_from_dict
from ml.schema import InputSchema
from ml.store import FileFormat, ModelFiles, ModelInfo, ModelNotFound, check_name, sha256_of, sklearn_version
from webapp.config import Settings
from webapp.db import STATEMENT_TIMEOUT_SECONDS, make_engine, make_session_factory, transaction
from webapp.models import Job, JobStatus, RegisteredModel

if TYPE_CHECKING:  # scikit-learn and pandas are imported when a model is added: the web server starts without them
    import pandas as pd

    from ml.registration import Description

LATENCY_SAMPLE = 1000
# How long a server or worker trusts what it read from the registry (see ModelRegistry.get).
REGISTRY_CACHE_SECONDS = 1.0  # the p50 on a model's page is taken over its latest jobs


class ModelInUse(ValueError):
    """A version cannot be removed while jobs are queued or running on it; the message says how many."""


class ModelRegistry:
    """Registered models, read from the database by every process; their files live in `files`."""

    def __init__(self, sessions: sessionmaker[Session], files: ModelFiles, *, cache_seconds: float = 0) -> None:
        self.sessions = sessions
        self.files = files
        # Every job looks its model up: answers are kept this long (another process's changes are seen after it).
        self.cache_seconds = cache_seconds
        self._cache: dict[tuple[str, str | None], tuple[float, ModelInfo]] = {}
        self._reading: dict[tuple[str, str | None], threading.Lock] = {}

    def get(self, name: str, version: str | None = None) -> ModelInfo:
        """A version of a model; its default version when `version` is None."""
        if not self.cache_seconds:
            return self._read(name, version)
        key = (name, version)
        kept = self._cache.get(key)
        if kept is not None and kept[0] > time.monotonic():
            return kept[1]
        # Expired: one thread reads it again; the others answer with what was read last or, when nothing was, wait
        # for that read no longer than a statement may run (behind a hung database they would queue otherwise).
        lock = self._reading.setdefault(key, threading.Lock())
        held = lock.acquire(timeout=STATEMENT_TIMEOUT_SECONDS) if kept is None else lock.acquire(blocking=False)
        if not held and kept is not None:
            return kept[1]
        try:
            kept = self._cache.get(key)
            if kept is not None and kept[0] > time.monotonic():
                return kept[1]
            info = self._read(name, version)
            self._cache[key] = (time.monotonic() + self.cache_seconds, info)
            return info
        finally:
            if key not in self._cache:  # anyone may ask for any name: one that is not registered keeps no lock
                self._reading.pop(key, None)
            if held:
                lock.release()

    def _read(self, name: str, version: str | None) -> ModelInfo:
        query = select(RegisteredModel).where(RegisteredModel.name == name)
        query = query.where(RegisteredModel.version == version) if version else query.where(RegisteredModel.is_default)
        with self.sessions() as session:
            row = session.scalars(query).one_or_none()
        if row is None:
            what = f"model {name!r}" if version is None else f"version {version!r} of model {name!r}"
            raise ModelNotFound(f"{what} is not registered")
        return self._info(row)

    def all_models(self) -> list[ModelInfo]:
        """The default version of every model, by name."""
        with self.sessions() as session:
            rows = session.scalars(
                select(RegisteredModel).where(RegisteredModel.is_default).order_by(RegisteredModel.name)
            ).all()
        return [self._info(row) for row in rows]

    def versions(self, name: str) -> list[ModelInfo]:
        """Every version of a model, the most recently registered first."""
        with self.sessions() as session:
            rows = session.scalars(
                select(RegisteredModel)
                .where(RegisteredModel.name == name)
                .order_by(RegisteredModel.registered_at.desc(), RegisteredModel.version.desc())
            ).all()
        if not rows:
            raise ModelNotFound(f"model {name!r} is not registered")
        return [self._info(row) for row in rows]

    def register(
        self,
        data: bytes,
        file_format: FileFormat,
        name: str,
        version: str | None = None,
        *,
        training: pd.DataFrame | None = None,
        metadata: Mapping[str, Any] | None = None,
        trusted: Sequence[str] = (),
    ) -> ModelInfo:
        """Check a model file, describe its inputs, keep the file and record the version.

        The first version of a model becomes its default. skops files are checked for untrusted types before
        anything in them is loaded; joblib files must come from the server's operators.
        """
        from sklearn.exceptions import InconsistentVersionWarning

        from ml.registration import describe_estimator, load_estimator

        check_name(name, "model name")
        version = check_name(version or self._next_version(name), "version")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", InconsistentVersionWarning)
            estimator = load_estimator(data, file_format, trusted)
        saved_with = next(
            (w.message.original_sklearn_version for w in caught if isinstance(w.message, InconsistentVersionWarning)),
            sklearn_version(),
        )
        description = describe_estimator(estimator, training, metadata)
        reference = build_reference(description.schema, training)
        with self.sessions() as session:
            taken = session.scalar(
                select(RegisteredModel.id).where(RegisteredModel.name == name, RegisteredModel.version == version)
            )
            first = session.scalar(select(RegisteredModel.id).where(RegisteredModel.name == name)) is None
        if taken:
            raise FileExistsError(f"{name} {version} is already registered")
        self.files.remove(name, version)  # a file left by a registration that failed halfway
        self.files.write(name, version, file_format, data)
        try:
            self._insert(name, version, file_format, data, description, str(saved_with), first, trusted, reference)
        except BaseException:
            self.files.remove(name, version)  # nothing is left of a version that was not recorded
            raise
        self._cache.clear()
        return self.get(name, version)

    def _insert(
        self,
        name: str,
        version: str,
        file_format: FileFormat,
        data: bytes,
        description: Description,
        saved_with: str,
        first: bool,
        trusted: Sequence[str],
        reference: Reference,
    ) -> None:
        with transaction(self.sessions) as session:
            session.add(
                RegisteredModel(
                    name=name,
                    version=version,
                    task=description.task,
                    features=description.schema.to_dict(),
                    classes=description.classes,
                    targets=[t.to_dict() for t in description.targets] if description.targets else None,
                    sha256=sha256_of(data),
                    size_bytes=len(data),
                    sklearn_version=saved_with,
                    file_format=file_format,
                    is_default=first,
                    trusted_types=sorted(set(trusted)) or None,
                    reference=reference,
                )
            )

    def set_default(self, name: str, version: str) -> ModelInfo:
        """Make `version` the one used when a request names no version."""
        self.get(name, version)
        with transaction(self.sessions) as session:
            session.execute(
                update(RegisteredModel)
                .where(RegisteredModel.name == name)
                .values(is_default=RegisteredModel.version == version)
            )
        self._cache.clear()
        return self.get(name, version)

    def remove(self, name: str, version: str | None = None) -> list[str]:
        """Forget a version (or every version) and delete its file; jobs keep the name and version they used.
        When the default goes and others stay, the most recently registered of them becomes the default. Refused
        (ModelInUse) while jobs are queued or running on it: they would fail for want of the file."""
        removed = [v.version for v in self.versions(name) if version is None or v.version == version]
        if not removed:
            raise ModelNotFound(f"version {version!r} of model {name!r} is not registered")
        open_jobs = (Job.model_name == name) & Job.model_version.in_(removed)
        open_jobs &= Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING])
        with self.sessions() as session:
            waiting = session.scalar(select(func.count()).select_from(Job).where(open_jobs)) or 0
        if waiting:
            raise ModelInUse(
                f"{waiting} job{'s are' if waiting > 1 else ' is'} queued or running on {name} {', '.join(removed)}: "
                "wait for them to end (or cancel them), then remove it"
            )
        with transaction(self.sessions) as session:
            session.execute(
                delete(RegisteredModel).where(RegisteredModel.name == name, RegisteredModel.version.in_(removed))
            )
            left = session.scalars(
                select(RegisteredModel)
                .where(RegisteredModel.name == name)
                .order_by(RegisteredModel.registered_at.desc())
            ).all()
            if left and not any(row.is_default for row in left):
                left[0].is_default = True
        self._cache.clear()
        for gone in removed:
            self.files.remove(name, gone)
        return removed

    def served(self, name: str) -> tuple[int, float | None]:
        """How many jobs a model has finished, and the median seconds from submission to result of the latest."""
        ended = (Job.model_name == name) & Job.status.in_([JobStatus.SUCCEEDED, JobStatus.FAILED])
        with self.sessions() as session:
            count = session.scalar(select(func.count()).select_from(Job).where(ended)) or 0
            latest = session.execute(
                select(Job.created_at, Job.finished_at)
                .where(ended, Job.finished_at.is_not(None))
                .order_by(Job.created_at.desc())
                .limit(LATENCY_SAMPLE)
            ).all()
        seconds = [(finished - created).total_seconds() for created, finished in latest if finished is not None]
        return count, statistics.median(seconds) if seconds else None

    def _next_version(self, name: str) -> str:
        with self.sessions() as session:
            versions = session.scalars(select(RegisteredModel.version).where(RegisteredModel.name == name)).all()
        return str(max((int(v) for v in versions if v.isdigit()), default=0) + 1)

    def _info(self, row: RegisteredModel) -> ModelInfo:
        schema = InputSchema.from_dict(row.features)
        return ModelInfo(
            name=row.name,
            version=row.version,
            task="classification" if row.task == "classification" else "regression",
            schema=schema,
            classes=row.classes,
            sha256=row.sha256,
            size_bytes=row.size_bytes,
            sklearn_version=row.sklearn_version,
            file_format="skops" if row.file_format == "skops" else "joblib",
            is_default=row.is_default,
            registered_at=row.registered_at,
            path=self.files.path_for(row.name, row.version, "skops" if row.file_format == "skops" else "joblib"),
            reference=reference_or_default(row.reference, schema),
            targets=outputs_from_dict(row.targets) if row.targets else None,
            trusted_types=row.trusted_types or [],
        )


@contextmanager
def open_registry(settings: Settings) -> Iterator[ModelRegistry]:
    """A registry with a database connection of its own, for a command; closed when the command is done."""
    engine = make_engine(settings.database_url)
    try:
        yield ModelRegistry(make_session_factory(engine), ModelFiles(settings.models_dir))
    finally:
        engine.dispose()


def estimator_bytes(estimator: Any) -> bytes:
    import joblib

    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    return buffer.getvalue()


def ensure_demos(registry: ModelRegistry) -> list[ModelInfo]:
    """Train and register the demo models that are missing; returns those registered now."""
    from ml.demo import DEMO_METADATA, DEMOS

    registered = []
    for name, train in DEMOS.items():
        try:
            registry.get(name)
        except ModelNotFound:
            estimator, training = train()
            data, metadata = estimator_bytes(estimator), DEMO_METADATA[name]
            registered.append(registry.register(data, "joblib", name, training=training, metadata=metadata))
    return registered
