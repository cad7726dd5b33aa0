"""What /metrics says of tracking: each model version's figures from outcomes, and today's drift per feature."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ml.drift import compare, reference_or_default
from ml.schema import InputSchema
from webapp.models import RegisteredModel, utcnow
from webapp.services.tracking.figures import WINDOW_DAYS, all_figures
from webapp.services.tracking.summaries import summaries_of_day

FIGURES = {
    "accuracy": "Share of predictions whose label was the true one",
    "log_loss": "Mean log loss (negative log probability of the true class)",
    "f1": "Macro F1 over the labels that occur",
    "mae": "Mean absolute error",
    "rmse": "Root mean squared error",
}


class TrackingCollector(Collector):
    """Reads the outcomes and today's feature summaries on each scrape, like the job figures."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[Metric]:
        yield from self._figures()
        yield from self._drift()

    def _figures(self) -> Iterator[Metric]:
        figures = all_figures(self.sessions)
        labels = ["model", "version"]
        rows = GaugeMetricFamily(
            "apot_outcomes_rows",
            f"Predictions of the last {WINDOW_DAYS} days with a reported outcome, by model version.",
            labels=labels,
        )
        families = {
            name: GaugeMetricFamily(
                f"apot_model_{name}",
                f"{text}, over predictions of the last {WINDOW_DAYS} days with a reported outcome, by model version.",
                labels=labels,
            )
            for name, text in FIGURES.items()
        }
        for (model, version), found in sorted(figures.items()):
            rows.add_metric([model, version], found.rows)
            for name, family in families.items():
                value = getattr(found, name)
                if value is not None:
                    family.add_metric([model, version], value)
        yield rows
        yield from families.values()

    def _drift(self) -> Iterator[Metric]:
        today = summaries_of_day(self.sessions, utcnow().date())
        labels = ["model", "version", "feature"]
        psi = GaugeMetricFamily(
            "apot_feature_psi", "Population stability index of today's rows against the reference.", labels=labels
        )
        drifting = GaugeMetricFamily(
            "apot_feature_drifting",
            "1 if the feature drifted today (PSI at least 0.25, 100 rows or more).",
            labels=labels,
        )
        outside = GaugeMetricFamily(
            "apot_feature_outside_reference",
            "Rows today with a value outside the reference: out of its range, or an unseen category.",
            labels=labels,
        )
        if today:
            with self.sessions() as session:
                models = session.execute(
                    select(
                        RegisteredModel.name,
                        RegisteredModel.version,
                        RegisteredModel.features,
                        RegisteredModel.reference,
                    )
                ).all()
            for name, version, features, stored in models:
                summary = today.get((name, version))
                if summary is None:
                    continue
                reference = reference_or_default(stored, InputSchema.from_dict(features))
                for feature in compare(reference, summary):
                    if feature.psi is None:
                        continue
                    psi.add_metric([name, version, feature.name], feature.psi)
                    drifting.add_metric([name, version, feature.name], 1 if feature.flagged else 0)
                    outside.add_metric([name, version, feature.name], feature.outside)
        yield psi
        yield drifting
        yield outside
