"""Schema derivation from fitted estimators: the demo pipeline and pipelines users bring."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression

from ml.demo import DEMO_METADATA, build_pipeline, train_diabetes, training_data
from ml.predict import predict_frame
from ml.registration import describe_estimator
from ml.schema import InputSchema, SchemaError, derive_schema, to_frame


@pytest.fixture(scope="module")
def demo_schema() -> InputSchema:
    features, species = training_data()
    described = features.astype({"flipper_length_mm": "Int64", "body_mass_g": "Int64"})
    return derive_schema(build_pipeline().fit(features, species), described)


def test_demo_features_come_in_training_order_with_their_types(demo_schema: InputSchema) -> None:
    assert [(f.name, f.type) for f in demo_schema.features] == [
        ("island", "category"),
        ("bill_length_mm", "number"),
        ("flipper_length_mm", "integer"),
        ("bill_depth_mm", "number"),
        ("body_mass_g", "integer"),
        ("sex", "category"),
    ]


def test_categories_come_from_the_fitted_encoders(demo_schema: InputSchema) -> None:
    by_name = {f.name: f for f in demo_schema.features}
    assert by_name["island"].choices == ["Biscoe", "Dream", "Torgersen"]
    assert by_name["sex"].choices == ["female", "male"]


def test_imputed_features_are_optional_and_the_others_required(demo_schema: InputSchema) -> None:
    required = {f.name: f.required for f in demo_schema.features}
    assert required == {
        "island": True,
        "bill_length_mm": True,
        "flipper_length_mm": True,
        "bill_depth_mm": False,
        "body_mass_g": False,
        "sex": False,
    }


def test_numeric_ranges_are_those_seen_in_training(demo_schema: InputSchema) -> None:
    flipper = next(f for f in demo_schema.features if f.name == "flipper_length_mm")
    assert (flipper.min, flipper.max) == (172, 231)


def test_schema_survives_a_round_trip_through_json_metadata(demo_schema: InputSchema) -> None:
    assert InputSchema.from_dict(demo_schema.to_dict()) == demo_schema


def test_a_users_pipeline_without_encoders_or_training_data_is_described() -> None:
    frame = pd.DataFrame({"age": [30.0, 40.0, np.nan, 50.0] * 10, "bmi": [20.0, 25.0, 30.0, 35.0] * 10})
    model = HistGradientBoostingRegressor(max_iter=5).fit(frame, np.arange(40.0))

    schema = derive_schema(model)

    assert [(f.name, f.type) for f in schema.features] == [("age", "number"), ("bmi", "number")]
    # Gradient boosting handles missing values natively, so nothing has to be sent.
    assert not any(f.required for f in schema.features)


def test_an_estimator_fitted_on_a_bare_array_is_refused() -> None:
    model = LogisticRegression().fit(np.array([[0.0], [1.0]]), [0, 1])
    with pytest.raises(SchemaError, match="feature_names_in_"):
        derive_schema(model)


def test_the_diabetes_demo_is_a_regressor_whose_lab_values_are_optional() -> None:
    estimator, training = train_diabetes()
    diabetes = describe_estimator(estimator, training)
    features = {f.name: f for f in diabetes.schema.features}
    assert diabetes.task == "regression" and diabetes.classes is None
    assert (features["age"].type, features["age"].min, features["age"].max) == ("integer", 19, 79)
    assert features["sex"].choices == ["1", "2"]
    assert [f.name for f in diabetes.schema.features if not f.required] == ["s1", "s2", "s3", "s4", "s5", "s6"]
    row = {"age": 59, "sex": "2", "bmi": 32.1, "bp": 101.0}
    (prediction,) = predict_frame(estimator, to_frame([row], diabetes.schema.features), diabetes.outputs)
    assert 25 <= prediction["value"] <= 346, "within the range of progressions seen in training"


def test_metadata_gives_features_descriptions_and_units_and_a_typo_is_refused() -> None:
    pipeline, training = train_diabetes()
    schema = describe_estimator(pipeline, training, DEMO_METADATA["diabetes"]).schema
    by_name = {f.name: f for f in schema.features}
    assert by_name["s1"].description == "tc: total serum cholesterol" and by_name["s1"].unit is None
    assert by_name["age"].unit == "years" and by_name["s6"].description == "glu: blood sugar level"
    assert InputSchema.from_dict(schema.to_dict()) == schema, "kept with the schema"
    with pytest.raises(SchemaError, match="units name s7, which the model does not take"):
        describe_estimator(pipeline, training, {"units": {"s7": "mg/dL"}})


def test_the_penguins_demo_ships_its_units() -> None:
    units = DEMO_METADATA["penguins"]["units"]
    assert units == {"bill_length_mm": "mm", "bill_depth_mm": "mm", "flipper_length_mm": "mm", "body_mass_g": "g"}
    assert set(DEMO_METADATA["penguins"]["descriptions"]) == set(training_data()[0].columns)
