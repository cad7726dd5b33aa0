"""The BentoML peer: `predict` with adaptive batching on (BentoML merges concurrent calls into one), and
`predict_many` for a 1,000-row request in one call (the batching endpoint would cut it into max_batch_size pieces).

Run by the bench in its own virtualenv (`bentoml serve bench.peers.bentoml_service:Penguins`), the model file
named by PEER_MODEL; one worker, BentoML's default.
"""

from __future__ import annotations

import os
from typing import Any

import bentoml
import joblib
import pandas as pd


@bentoml.service(workers=1)
class Penguins:
    def __init__(self) -> None:
        self.model = joblib.load(os.environ["PEER_MODEL"])
        self.features = list(self.model.feature_names_in_)
        self.classes = [str(label) for label in self.model.classes_]

    def _predict(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        frame = pd.DataFrame([{name: row.get(name) for name in self.features} for row in rows], columns=self.features)
        return [
            {
                "label": self.classes[int(p.argmax())],
                "probabilities": dict(zip(self.classes, map(float, p), strict=True)),
            }
            for p in self.model.predict_proba(frame)
        ]

    @bentoml.api(batchable=True)
    def predict(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._predict(rows)

    @bentoml.api
    def predict_many(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._predict(rows)
