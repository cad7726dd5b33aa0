"""Clients written for other servers' protocols, used as their documentation shows, against a live apot (web
server, worker, broker); each answer compared with apot's own API for the same rows.

- a client generated from /openapi.json by openapi-python-client, in the test;
- tritonclient's HTTP client (the Open Inference Protocol, KServe V2), with its default binary tensors;
- MLflow's serving payloads (mlflow-skinny's `convert_input_example_to_serving_input`) POSTed as MLflow documents.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx2
import numpy as np
import pandas as pd
import pytest

from apot import Client
from tests.models import Trained
from tests.stacks import Stack, running_stack

pytestmark = pytest.mark.e2e

GENTOO = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230.0, "sex": "male"}
ADELIE = {"island": "Torgersen", "bill_length_mm": 36.7, "flipper_length_mm": 187.0, "sex": "female"}
CHINSTRAP = {"island": "Dream", "bill_length_mm": 50.9, "flipper_length_mm": 196.0, "sex": "male"}
ROWS = [GENTOO, ADELIE, CHINSTRAP]
CLASSES = ["Adelie", "Chinstrap", "Gentoo"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, trained_models: dict[str, Trained]) -> Iterator[Stack]:
    with running_stack("embedded", tmp_path_factory.mktemp("ecosystem"), trained_models) as stack:
        yield stack


@pytest.fixture(scope="module")
def reference(stack: Stack) -> dict[str, Any]:
    """What apot's own API answers for ROWS and for two rows of the regressor."""
    with Client(stack.base_url, api_key=stack.account.key) as apot:
        penguins = apot.predict("penguins", ROWS, wait=30)
        sizes = apot.predict("sizes", [{"size": 2.0, "colour": "red"}, {"size": 3.5, "colour": "blue"}], wait=30)
    assert penguins["status"] == sizes["status"] == "succeeded"
    return {"penguins": penguins["result"]["predictions"], "sizes": sizes["result"]["predictions"]}


@pytest.fixture(scope="module")
def generated(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The package openapi-python-client generates from the live server's /openapi.json, importable."""
    root = tmp_path_factory.mktemp("generated")
    (root / "openapi.json").write_bytes(httpx2.get(f"{stack.base_url}/openapi.json").content)
    generator = Path(sys.executable).parent / "openapi-python-client"
    command = [str(generator), "generate", "--path", str(root / "openapi.json"), "--meta", "none"]
    # Its post-generation hooks run ruff: the one beside this Python, whatever PATH the tests run with.
    path = f"{generator.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    done = subprocess.run(
        [*command, "--output-path", str(root / "apot_client")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PATH": path},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout, done.stdout  # every schema in the document was understood
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module("apot_client")
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == "apot_client" or m.startswith("apot_client.")]:
            del sys.modules[name]


def test_a_generated_client_sends_the_key_types_inputs_and_reads_problems(
    stack: Stack, generated: ModuleType, reference: dict[str, Any]
) -> None:
    jobs = importlib.import_module("apot_client.api.jobs.create_job")
    listing = importlib.import_module("apot_client.api.jobs.list_jobs")
    get_model = importlib.import_module("apot_client.api.models.get_model")
    types = importlib.import_module("apot_client.models")

    # Statuses the document does not declare raise here: every answer below is documented.
    with generated.AuthenticatedClient(stack.base_url, token=stack.account.key, raise_on_unexpected_status=True) as c:
        rows = [types.PenguinsInputs.from_dict(row) for row in ROWS]
        done = jobs.sync_detailed(client=c, body=types.JobCreate(model="penguins", inputs=rows), prefer="wait=30")
        wrong = jobs.sync_detailed(
            client=c,
            body=types.JobCreate(model="penguins", inputs=types.SizesInputs.from_dict({"size": 2.0, "colour": "red"})),
        )
        missing = get_model.sync_detailed(client=c, name="unicorns")
        page = listing.sync_detailed(client=c, limit=1)

    assert done.status_code == 200 and isinstance(done.parsed, types.JobOut)
    assert [p.to_dict() for p in done.parsed.result.predictions] == reference["penguins"]
    assert wrong.status_code == 422 and isinstance(wrong.parsed, types.ValidationProblem)
    assert {tuple(e.loc) for e in wrong.parsed.detail} >= {("body", "inputs", "size"), ("body", "inputs", "island")}
    assert missing.status_code == 404 and missing.parsed.detail == "model 'unicorns' is not registered"
    assert page.parsed.next_cursor in page.headers["link"]


@pytest.fixture(scope="module")
def triton(stack: Stack) -> Iterator[Any]:
    http = pytest.importorskip("tritonclient.http")
    client = http.InferenceServerClient(url=stack.base_url.removeprefix("http://"))
    yield client
    client.close()


def penguin_tensors(http: ModuleType, rows: list[dict[str, Any]], *, binary: bool) -> list[Any]:
    """One tensor per feature, [rows, 1], as MLServer's pandas codec lays out a DataFrame."""
    tensors = []
    for name, datatype in [
        ("island", "BYTES"),
        ("bill_length_mm", "FP64"),
        ("flipper_length_mm", "FP64"),
        ("sex", "BYTES"),
    ]:
        values = [[row[name].encode() if datatype == "BYTES" else row[name]] for row in rows]
        array = np.array(values, dtype=object if datatype == "BYTES" else np.float64)
        tensor = http.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array, binary_data=binary)
        tensors.append(tensor)
    return tensors


def test_tritonclient_reads_health_and_typed_metadata(stack: Stack, triton: Any) -> None:
    assert triton.is_server_live() and triton.is_server_ready()
    assert triton.is_model_ready("penguins", headers=stack.auth)
    metadata = triton.get_model_metadata("penguins", headers=stack.auth)
    pinned = triton.get_model_metadata("penguins", model_version="1", headers=stack.auth)

    inputs = {i["name"]: i["datatype"] for i in metadata["inputs"]}
    assert inputs["island"] == "BYTES" and inputs["bill_length_mm"] == "FP64"
    assert [o["name"] for o in metadata["outputs"]] == ["predict", "predict_proba"]
    assert metadata["versions"] == ["1"] and pinned["name"] == "penguins"


@pytest.mark.parametrize("binary", [True, False], ids=["binary-tensors", "json-tensors"])
def test_tritonclient_infers_what_apot_predicts(
    stack: Stack, triton: Any, reference: dict[str, Any], binary: bool
) -> None:
    http = importlib.import_module("tritonclient.http")
    answer = triton.infer("penguins", penguin_tensors(http, ROWS, binary=binary), headers=stack.auth, request_id="7")

    labels = [label.decode() if isinstance(label, bytes) else label for label in answer.as_numpy("predict")]
    assert labels == [p["label"] for p in reference["penguins"]]
    expected = [[p["probabilities"][c] for c in CLASSES] for p in reference["penguins"]]
    assert np.allclose(answer.as_numpy("predict_proba"), expected)
    assert answer.get_response()["id"] == "7"


def test_tritonclient_infers_a_regression_on_a_pinned_version(
    stack: Stack, triton: Any, reference: dict[str, Any]
) -> None:
    http = importlib.import_module("tritonclient.http")
    size = http.InferInput("size", [2], "FP64")
    size.set_data_from_numpy(np.array([2.0, 3.5]))
    colour = http.InferInput("colour", [2], "BYTES")
    colour.set_data_from_numpy(np.array([b"red", b"blue"], dtype=object))

    answer = triton.infer("sizes", [size, colour], model_version="1", headers=stack.auth)

    assert np.allclose(answer.as_numpy("predict"), [p["value"] for p in reference["sizes"]])


def test_v2_requests_are_jobs_in_the_keys_history_and_errors_reach_the_client(stack: Stack, triton: Any) -> None:
    http = importlib.import_module("tritonclient.http")
    exception = importlib.import_module("tritonclient.utils").InferenceServerException
    bad = [{**GENTOO, "island": "Mars"}]

    with pytest.raises(exception, match=r"inputs\.0\.island: Input should be"):
        triton.infer("penguins", penguin_tensors(http, bad, binary=True), headers=stack.auth)
    with pytest.raises(exception, match="not registered"):
        triton.get_model_metadata("unicorns", headers=stack.auth)
    with pytest.raises(exception):
        triton.get_model_metadata("penguins")  # no key

    jobs = httpx2.get(f"{stack.base_url}/api/v1/jobs", params={"limit": 200}, headers=stack.auth).json()["items"]
    v2 = [job for job in jobs if job["kind"] == "v2"]
    assert v2 and all(job["status"] == "succeeded" for job in v2)
    assert {job["rows_total"] for job in v2 if job["model"] == "penguins"} == {len(ROWS)}


def mlflow_payloads(frame: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """The same rows in each format MLflow's server reads, as (content type, body)."""
    serving = importlib.import_module("mlflow.models").convert_input_example_to_serving_input
    records = frame.to_dict(orient="records")
    return {
        "dataframe_split": ("application/json", serving(frame)),  # what MLflow's docs build a request with
        "dataframe_records": ("application/json", json.dumps({"dataframe_records": records})),
        "instances": ("application/json", json.dumps({"instances": records})),
        "inputs": ("application/json", json.dumps({"inputs": frame.to_dict(orient="list")})),
        "csv": ("text/csv", frame.to_csv(index=False)),
    }


# mlflow-skinny 3.17 compares an index with a range, which pandas 3.1 deprecates: its warning, not ours.
@pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")
@pytest.mark.parametrize("form", ["dataframe_split", "dataframe_records", "instances", "inputs", "csv"])
def test_mlflow_invocations_answer_as_mlflows_server(stack: Stack, reference: dict[str, Any], form: str) -> None:
    requests = pytest.importorskip("requests")
    deployments = importlib.import_module("mlflow.deployments")
    content_type, body = mlflow_payloads(pd.DataFrame(ROWS))[form]

    response = requests.post(
        f"{stack.base_url}/models/penguins/invocations",
        data=body,
        headers={"Content-Type": content_type, **stack.auth},
        timeout=60,
    )

    assert response.status_code == 200, response.text
    answer = deployments.PredictionsResponse.from_json(response.text)
    labels = answer.get_predictions(predictions_format="ndarray")
    assert list(labels) == [p["label"] for p in reference["penguins"]]
    assert response.headers["apot-job"].startswith(f"{stack.base_url}/api/v1/jobs/")


def test_mlflow_invocations_of_a_regressor_and_its_errors(stack: Stack, reference: dict[str, Any]) -> None:
    requests = pytest.importorskip("requests")
    split = {"dataframe_split": {"columns": ["size", "colour"], "data": [[2.0, "red"], [3.5, "blue"]]}}
    url = f"{stack.base_url}/invocations"

    sizes = requests.post(url, params={"model": "sizes"}, json=split, headers=stack.auth, timeout=60)
    unnamed = requests.post(url, json=split, headers=stack.auth, timeout=60)
    bad = requests.post(
        url, params={"model": "sizes"}, json={"instances": [{"size": "big"}]}, headers=stack.auth, timeout=60
    )
    text = requests.post(
        url, params={"model": "sizes"}, data="size", headers={"Content-Type": "text/plain", **stack.auth}
    )

    assert sizes.status_code == 200
    assert sizes.json()["predictions"] == pytest.approx([p["value"] for p in reference["sizes"]])
    assert unnamed.status_code == 400 and unnamed.json()["error_code"] == "BAD_REQUEST"
    assert bad.status_code == 400 and "inputs.0.size: Input should be a valid number" in bad.json()["message"]
    assert text.status_code == 415
    assert requests.get(f"{stack.base_url}/ping", timeout=10).status_code == 200
