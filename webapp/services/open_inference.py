"""The Open Inference Protocol (KServe V2) in apot's terms: a model's metadata as typed tensors, the named input
tensors of an inference request as rows, and a job's predictions as output tensors.

Inputs are columnar, one tensor per feature named after it (as MLServer's pandas codec sends a DataFrame), or one
two-dimensional tensor whose columns are the features in the schema's order. Tensors come as JSON arrays or, with
the binary tensor data extension (what tritonclient sends by default), as raw bytes after the JSON header.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from ml.schema import Feature
from ml.store import ModelInfo
from ml.validation import InputError, InvalidInputs

# NumPy dtypes of the fixed-size datatypes, little-endian as the binary extension lays them out.
FIXED_DTYPES = {
    "BOOL": "?",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
PREDICT, PREDICT_PROBA = "predict", "predict_proba"  # the output names of MLServer's scikit-learn runtime


class BadTensors(ValueError):
    """The request is not a readable inference request; its message says why (answered 400)."""


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    rows: list[dict[str, Any]]
    outputs: list[str] | None


def feature_datatype(feature: Feature) -> str:
    """The tensor datatype a feature is sent as."""
    if feature.type == "number":
        return "FP64"
    if feature.type == "integer":
        return "INT64"
    if feature.type == "boolean":
        return "BOOL"
    choices = feature.choices or []
    if feature.type == "category" and choices and all(isinstance(c, int) for c in choices):
        return "INT64"
    if feature.type == "category" and choices and all(isinstance(c, int | float) for c in choices):
        return "FP64"
    return "BYTES"


def model_metadata(info: ModelInfo, versions: Sequence[str]) -> dict[str, Any]:
    """GET /v2/models/{name}: the inputs, one per feature, and the outputs."""
    outputs = [{"name": PREDICT, "datatype": _label_datatype(info), "shape": [-1]}]
    if info.task == "classification":
        outputs.append({"name": PREDICT_PROBA, "datatype": "FP64", "shape": [-1, len(info.classes or [])]})
    return {
        "name": info.name,
        "versions": list(versions),
        "platform": "sklearn",
        "inputs": [
            {
                "name": f.name,
                "datatype": feature_datatype(f),
                "shape": [-1, 1],
                "parameters": {"required": f.required, **({"choices": f.choices} if f.choices else {})},
            }
            for f in info.schema.features
        ],
        "outputs": outputs,
    }


def _label_datatype(info: ModelInfo) -> str:
    if info.task == "regression":
        return "FP64"
    classes = info.classes or []
    return "INT64" if classes and all(isinstance(c, int) for c in classes) else "BYTES"


def parse_request(body: bytes, header_length: str | None, info: ModelInfo) -> InferRequest:
    """The rows of an inference request, in order; BadTensors or InvalidInputs when they cannot be read."""
    try:
        split = int(header_length) if header_length is not None else len(body)
        document = orjson.loads(body[:split])
    except ValueError as exc:
        raise BadTensors(f"the body is not an inference request: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("inputs"), list) or not document["inputs"]:
        raise BadTensors("an inference request is a JSON object with a non-empty list of `inputs`")
    binary, columns = memoryview(body)[split:], {}
    for tensor in document["inputs"]:
        name, values, binary = _tensor(tensor, binary)
        columns[name] = values
    rows = _rows(columns, info)
    requested = document.get("outputs")
    outputs = [str(o.get("name")) for o in requested if isinstance(o, dict)] if isinstance(requested, list) else None
    return InferRequest(str(document["id"]) if document.get("id") is not None else None, rows, outputs or None)


def _tensor(tensor: Any, binary: memoryview) -> tuple[str, np.ndarray, memoryview]:
    """One input tensor as a NumPy array of its shape, and the binary data left after it."""
    if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
        raise BadTensors("each input is an object with a `name`, `shape`, `datatype` and `data`")
    name, datatype, shape = tensor["name"], tensor.get("datatype"), tensor.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape) or not shape:
        raise BadTensors(f"input {name!r}: `shape` must be a non-empty list of sizes")
    if datatype != "BYTES" and datatype not in FIXED_DTYPES:
        raise BadTensors(f"input {name!r}: unknown datatype {datatype!r}")
    size = (tensor.get("parameters") or {}).get("binary_data_size")
    count = int(np.prod(shape))
    if size is not None:
        if not isinstance(size, int) or size < 0 or size > len(binary):
            raise BadTensors(f"input {name!r}: binary_data_size is larger than the data sent")
        flat = _from_bytes(bytes(binary[:size]), datatype, name)
        binary = binary[size:]
    else:
        flat = np.array(_flatten(tensor.get("data"), name), dtype=object)
    if flat.size != count:
        raise BadTensors(f"input {name!r}: {flat.size} values for shape {shape}")
    return name, flat.reshape(shape), binary


def _flatten(data: Any, name: str) -> list[Any]:
    if not isinstance(data, list):
        raise BadTensors(f"input {name!r}: `data` must be a list")
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def _from_bytes(raw: bytes, datatype: str, name: str) -> np.ndarray:
    if datatype in FIXED_DTYPES:
        dtype = np.dtype(FIXED_DTYPES[datatype])
        if len(raw) % dtype.itemsize:
            raise BadTensors(f"input {name!r}: {len(raw)} bytes is not a whole number of {datatype}")
        return np.frombuffer(raw, dtype=dtype).astype(object)
    items, offset = [], 0
    while offset < len(raw):  # BYTES: each element is a 4-byte little-endian length, then that many bytes
        if offset + 4 > len(raw):
            raise BadTensors(f"input {name!r}: truncated BYTES element")
        (length,) = struct.unpack_from("<I", raw, offset)
        items.append(raw[offset + 4 : offset + 4 + length])
        offset += 4 + length
    if offset != len(raw):
        raise BadTensors(f"input {name!r}: truncated BYTES element")
    return np.array(items, dtype=object)


def _rows(columns: dict[str, np.ndarray], info: ModelInfo) -> list[dict[str, Any]]:
    names = info.schema.names
    if len(columns) == 1 and next(iter(columns)) not in names:  # one tensor of every feature, in schema order
        ((name, matrix),) = columns.items()
        if matrix.ndim != 2 or matrix.shape[1] != len(names):
            raise BadTensors(f"input {name!r} is not a feature; one tensor for all must be [rows, {len(names)}]")
        columns = {feature: matrix[:, i] for i, feature in enumerate(names)}
    counts = {name: len(values) for name, values in columns.items()}
    if len(set(counts.values())) > 1:
        raise BadTensors(f"every input must have as many rows: {counts}")
    unknown = [name for name in columns if name not in names]
    if unknown:
        expected = ", ".join(names)
        raise InvalidInputs(
            [InputError((n,), f"Unknown feature; this model expects {expected}", "extra") for n in unknown]
        )
    length = next(iter(counts.values()))
    flat = {name: values.reshape(length, -1) for name, values in columns.items()}
    for name, values in flat.items():
        if values.shape[1] != 1:
            raise BadTensors(f"input {name!r} is one feature: its shape must be [rows] or [rows, 1]")
    return [{name: _plain(values[i, 0]) for name, values in flat.items()} for i in range(length)]


def _plain(value: Any) -> Any:
    """A JSON value as apot's validation reads it: text for bytes, Python numbers for NumPy's."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    return value


def infer_response(info: ModelInfo, request_id: str | None, result: dict[str, Any], wanted: list[str] | None) -> dict:
    """The protocol's answer for a job's predictions: `predict`, and for a classifier `predict_proba`."""
    predictions = result["predictions"]
    rows = len(predictions)
    outputs: list[dict[str, Any]] = []
    if info.task == "regression":
        outputs.append(
            {"name": PREDICT, "datatype": "FP64", "shape": [rows], "data": [p["value"] for p in predictions]}
        )
    else:
        classes = [str(c) for c in info.classes or []]
        labels = [p["label"] for p in predictions]
        outputs.append({"name": PREDICT, "datatype": _label_datatype(info), "shape": [rows], "data": labels})
        probabilities = [p["probabilities"][c] for p in predictions for c in classes]
        outputs.append(
            {
                "name": PREDICT_PROBA,
                "datatype": "FP64",
                "shape": [rows, len(classes)],
                "data": probabilities,
                "parameters": {"classes": classes},
            }
        )
    if wanted is not None:
        outputs = [o for o in outputs if o["name"] in wanted]
    answer: dict[str, Any] = {"model_name": info.name, "model_version": info.version, "outputs": outputs}
    if request_id is not None:
        answer["id"] = request_id
    return answer
