"""The plain FastAPI peer: the model in the process, one predict_proba per request, nothing stored.

Run by the bench in its own virtualenv (`uvicorn bench.peers.fastapi_app:app`), the model file named by
PEER_MODEL. It answers what apot's job carries: a label and the probability of each class per row.
"""

from __future__ import annotations

import os
from typing import Any

import joblib
import pandas as pd
from fastapi import FastAPI

model = joblib.load(os.environ["PEER_MODEL"])
features = list(model.feature_names_in_)
classes = [str(label) for label in model.classes_]
app = FastAPI()


def predict(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    frame = pd.DataFrame([{name: row.get(name) for name in features} for row in rows], columns=features)
    return [
        {"label": classes[int(p.argmax())], "probabilities": dict(zip(classes, map(float, p), strict=True))}
        for p in model.predict_proba(frame)
    ]


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/predict")
def predict_one(row: dict[str, Any]) -> dict[str, Any]:
    return predict([row])[0]


@app.post("/predict_batch")
def predict_many(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return predict(rows)
