"""A classifier that takes its time: long enough for a test to kill the worker that is scoring it."""

from __future__ import annotations

import time
from contextlib import suppress
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

SECONDS_PER_CALL = 1.5


class Sleepy(ClassifierMixin, BaseEstimator):
    """Answers "late" for every row, SECONDS_PER_CALL after being asked."""

    def fit(self, frame: pd.DataFrame, _labels: Any = None) -> Sleepy:
        self.feature_names_in_ = np.array(list(frame.columns), dtype=object)
        self.n_features_in_ = len(frame.columns)
        self.classes_ = np.array(["late", "on time"], dtype=object)
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        time.sleep(SECONDS_PER_CALL)
        return np.tile([1.0, 0.0], (len(frame), 1))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.classes_[self.predict_proba(frame).argmax(axis=1)]


def training() -> pd.DataFrame:
    return pd.DataFrame({"minutes": [1.0, 5.0, 30.0]})


STUBBORN_MINUTES = 7  # not in the training data: registering the model (which predicts on it) is quick


class Stubborn(Sleepy):
    """Asked about STUBBORN_MINUTES, ignores the soft time limit: catches everything (SoftTimeLimitExceeded too)
    and goes on for a minute."""

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        until = time.monotonic() + (60 if (frame["minutes"] == STUBBORN_MINUTES).all() else 0)
        while time.monotonic() < until:
            with suppress(Exception):  # SoftTimeLimitExceeded too: the point of this model
                time.sleep(0.1)
        return np.tile([1.0, 0.0], (len(frame), 1))
