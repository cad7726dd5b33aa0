"""The figures outcomes give: per model version over a window of days and per day, for the model page and
/metrics, from sums the database groups (ml.scores)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ml.scores import ClassCell, Figures, classifier_figures, regressor_figures
from webapp.models import Job, JobKind, JobStatus, utcnow
from webapp.services.tracking.tables import Outcome

# The model page and /metrics look this far back, by the day the predictions were made.
WINDOW_DAYS = 30


@dataclass
class VersionFigures:
    """A model version's figures over the window, and per day."""

    version: str
    total: Figures
    predicted: int  # rows the version scored in the window, with an outcome or not
    days: list[tuple[date, Figures]] = field(default_factory=list)


def figures(sessions: sessionmaker[Session], name: str, task: str, days: int = WINDOW_DAYS) -> list[VersionFigures]:
    """Each version's figures over the last `days` days of predictions with outcomes, newest version first."""
    since = utcnow().date() - timedelta(days=days - 1)
    window = (Outcome.model_name == name) & (Outcome.day >= since)
    with sessions() as session:
        predicted = dict(
            session.execute(
                select(Job.model_version, func.sum(Job.rows_done - Job.rows_failed))
                .where(Job.model_name == name, Job.status == JobStatus.SUCCEEDED, Job.kind != JobKind.EXPLAIN)
                .where(Job.created_at >= utcnow() - timedelta(days=days))
                .group_by(Job.model_version)
            ).all()
        )
        if task == "classification":
            cells = session.execute(
                select(
                    Outcome.model_version,
                    Outcome.day,
                    Outcome.label_true,
                    Outcome.label_predicted,
                    func.count(),
                    func.sum(Outcome.loss),
                )
                .where(window)
                .group_by(Outcome.model_version, Outcome.day, Outcome.label_true, Outcome.label_predicted)
            ).all()
            return _classifier_versions(cells, predicted)
        sums = session.execute(
            select(
                Outcome.model_version,
                Outcome.day,
                func.count(),
                func.sum(func.abs(Outcome.error)),
                func.sum(Outcome.error * Outcome.error),
            )
            .where(window)
            .group_by(Outcome.model_version, Outcome.day)
        ).all()
    return _regressor_versions(sums, predicted)


def _classifier_versions(rows: Iterable[Any], predicted: dict[str, int]) -> list[VersionFigures]:
    by_version: dict[str, dict[date, list[ClassCell]]] = {}
    for version, day, true, guessed, count, loss in rows:
        by_version.setdefault(version, {}).setdefault(day, []).append(ClassCell(true, guessed, count, loss or 0.0))
    versions = []
    for version, days in by_version.items():
        every = [cell for cells in days.values() for cell in cells]
        daily = [(day, classifier_figures(cells)) for day, cells in sorted(days.items())]
        versions.append(VersionFigures(version, classifier_figures(every), int(predicted.get(version) or 0), daily))
    return sorted(versions, key=_newest_first)


def _regressor_versions(rows: Iterable[Any], predicted: dict[str, int]) -> list[VersionFigures]:
    by_version: dict[str, list[tuple[date, int, float, float]]] = {}
    for version, day, count, absolute, squared in rows:
        by_version.setdefault(version, []).append((day, count, absolute or 0.0, squared or 0.0))
    versions = []
    for version, days in by_version.items():
        total = regressor_figures(sum(d[1] for d in days), sum(d[2] for d in days), sum(d[3] for d in days))
        daily = [(day, regressor_figures(n, a, s)) for day, n, a, s in sorted(days)]
        versions.append(VersionFigures(version, total, int(predicted.get(version) or 0), daily))
    return sorted(versions, key=_newest_first)


def _newest_first(figures: VersionFigures) -> tuple[int, str]:
    return (-int(figures.version) if figures.version.isdigit() else 0, figures.version)


def daily_chart(versions: list[VersionFigures], task: str, most: int = 3) -> tuple[list[str], list[Any]]:
    """Days, and per version (the newest `most`) its accuracy or MAE on each day (0 on a day without outcomes)."""
    measure = "accuracy" if task == "classification" else "mae"
    days = sorted({day for v in versions[:most] for day, _ in v.days})
    series = []
    for i, v in enumerate(versions[:most]):
        by_day = dict(v.days)
        values = [getattr(by_day[d], measure) if d in by_day else 0.0 for d in days]
        series.append((f"version {v.version}", f"bar-version-{i}", values))
    return [d.strftime("%b %d") for d in days], series


def all_figures(sessions: sessionmaker[Session], days: int = WINDOW_DAYS) -> dict[tuple[str, str], Figures]:
    """Every model version's figures over the window, by (model, version), for /metrics."""
    since = utcnow().date() - timedelta(days=days - 1)
    cells: dict[tuple[str, str], list[ClassCell]] = {}
    with sessions() as session:
        for name, version, true, guessed, count, loss in session.execute(
            select(
                Outcome.model_name,
                Outcome.model_version,
                Outcome.label_true,
                Outcome.label_predicted,
                func.count(),
                func.sum(Outcome.loss),
            )
            .where(Outcome.day >= since, Outcome.label_true.is_not(None))
            .group_by(Outcome.model_name, Outcome.model_version, Outcome.label_true, Outcome.label_predicted)
        ):
            cells.setdefault((name, version), []).append(ClassCell(str(true), str(guessed), count, loss or 0.0))
        sums = session.execute(
            select(
                Outcome.model_name,
                Outcome.model_version,
                func.count(),
                func.sum(func.abs(Outcome.error)),
                func.sum(Outcome.error * Outcome.error),
            )
            .where(Outcome.day >= since, Outcome.error.is_not(None))
            .group_by(Outcome.model_name, Outcome.model_version)
        ).all()
    found = {key: classifier_figures(parts) for key, parts in cells.items()}
    found.update({(n, v): regressor_figures(c, a or 0.0, q or 0.0) for n, v, c, a, q in sums})
    return found
