"""The MLflow peer's model: the same fitted pipeline saved as an MLflow model (signature inferred from a row, served
with predict_proba), for `mlflow models serve --env-manager local`.

Run by the bench in the MLflow virtualenv: `python -m bench.peers.mlflow_model MODEL_FILE OUT_DIR`.
"""

from __future__ import annotations

import sys

import joblib
import mlflow.sklearn
import pandas as pd
from mlflow.models import infer_signature

from bench.peers import ROW


def main(model_file: str, out: str) -> None:
    model = joblib.load(model_file)
    example = pd.DataFrame([ROW], columns=list(model.feature_names_in_))
    mlflow.sklearn.save_model(
        model,
        out,
        serialization_format="cloudpickle",
        signature=infer_signature(example, model.predict_proba(example)),
        pyfunc_predict_fn="predict_proba",
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
