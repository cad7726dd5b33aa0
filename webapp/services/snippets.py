"""Ready-to-copy requests for one model: an example row from its schema as curl, Python-client and CLI calls, and
a CSV template of its columns."""

from __future__ import annotations

import csv
import io
import json
import shlex
from dataclasses import dataclass
from typing import Any

from ml.schema import Feature, InputSchema


def example_value(feature: Feature) -> Any:
    """A value the model accepts: the first choice, the middle of the training range, or a neutral default."""
    if feature.choices:
        return feature.choices[0]
    if feature.type == "boolean":
        return True
    if feature.type == "text":
        return "some text"
    if feature.min is not None and feature.max is not None:
        middle = (feature.min + feature.max) / 2
        return round(middle) if feature.type == "integer" else round(middle, 3)
    return 0 if feature.type == "integer" else 0.0


def example_row(schema: InputSchema) -> dict[str, Any]:
    return {feature.name: example_value(feature) for feature in schema.features}


@dataclass(frozen=True)
class Snippets:
    curl: str
    python: str
    cli: str


def snippets(model: str, version: str | None, schema: InputSchema, base_url: str) -> Snippets:
    """The same one-row request three ways; `version` pins it (None: the model's default)."""
    row = example_row(schema)
    row_json = json.dumps(row)
    body = {"model": model, **({"version": version} if version else {}), "inputs": row}
    curl = (
        f"curl -s -H \"Authorization: Bearer $APOT_KEY\" -H 'Prefer: wait' -XPOST {base_url}/api/v1/jobs \\\n"
        f"  -H 'content-type: application/json' -d {shlex.quote(json.dumps(body))}"
    )
    version_arg = f", version={version!r}" if version else ""
    python = (
        "import os\n\nfrom apot import Client\n\n"
        f'with Client({base_url!r}, api_key=os.environ["APOT_KEY"]) as apot:\n'
        f"    job = apot.predict({model!r}, {row!r}{version_arg})\n"
        '    print(job["status"], job["result"]["predictions"][0])'
    )
    version_option = f" --version {shlex.quote(version)}" if version else ""
    cli = (
        f'apot predict --url {base_url} --api-key "$APOT_KEY" --model {shlex.quote(model)}{version_option} \\\n'
        f"  --json {shlex.quote(row_json)}"
    )
    return Snippets(curl=curl, python=python, cli=cli)


def csv_template(schema: InputSchema) -> str:
    """The model's columns in order, and one example row to overwrite."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(schema.names)
    writer.writerow(["true" if v is True else v for v in example_row(schema).values()])
    return out.getvalue()
