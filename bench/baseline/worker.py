"""The baseline's Celery app: one task per request, scored by a model each worker process loads once.

Default Celery settings on purpose (this is the comparison point), except that task events are off and the queue
comes from BASELINE_QUEUE so that concurrent runs on one Redis do not take each other's tasks.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import joblib
import numpy as np
import pandas as pd
from celery import Celery

REDIS_URL = os.environ.get("BASELINE_REDIS_URL", "redis://127.0.0.1:6379/5")

app = Celery("baseline", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_default_queue=os.environ.get("BASELINE_QUEUE", "baseline"),
    worker_send_task_events=False,
    task_send_sent_event=False,
)


@functools.cache
def model() -> Any:
    # Lazy so that importing this module (the web does, to send tasks) never loads the model.
    return joblib.load(os.environ["BASELINE_MODEL_PATH"])


@app.task
def predict(row: dict[str, Any]) -> dict[str, Any]:
    estimator = model()
    # Object columns, as in training: a missing category (NaN) in a float column is refused by the encoder.
    frame = pd.DataFrame([{name: row.get(name, np.nan) for name in estimator.feature_names_in_}], dtype=object)
    probabilities = estimator.predict_proba(frame)[0]
    classes = [str(c) for c in estimator.classes_]
    return {
        "label": classes[int(probabilities.argmax())],
        "probabilities": dict(zip(classes, map(float, probabilities), strict=True)),
    }
