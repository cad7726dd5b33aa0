"""Request rows checked against a schema: every problem named, with the field and what was expected."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.schema import Feature, InputSchema
from ml.validation import InvalidInputs, _check, _coerced, row_warnings, validate_rows, value_warning

SCHEMA = InputSchema(
    [
        Feature("island", "category", choices=["Biscoe", "Dream"]),
        Feature("length", "number", min=10.0, max=20.0),
        Feature("count", "integer", required=False),
        Feature("tagged", "boolean", required=False),
    ]
)


def errors_of(rows: Sequence[object], *, batch: bool = False) -> list[tuple[tuple[int | str, ...], str]]:
    with pytest.raises(InvalidInputs) as caught:
        validate_rows(SCHEMA, rows, batch=batch)
    return [(e.loc, e.type) for e in caught.value.errors]


def test_a_good_row_comes_back_with_missing_optionals_as_none() -> None:
    rows = validate_rows(SCHEMA, [{"island": "Dream", "length": 12}], batch=False)
    assert rows == [{"island": "Dream", "length": 12, "count": None, "tagged": None}]


def test_unknown_category_names_the_allowed_values() -> None:
    with pytest.raises(InvalidInputs) as caught:
        validate_rows(SCHEMA, [{"island": "Mars", "length": 12}], batch=False)
    (error,) = caught.value.errors
    assert error.loc == ("island",)
    assert error.msg == "Input should be 'Biscoe' or 'Dream'"


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"length": 12}, [(("island",), "missing")]),
        ({"island": None, "length": 12}, [(("island",), "missing")]),
        ({"island": "Dream", "length": "12"}, [(("length",), "float_type")]),
        ({"island": "Dream", "length": [1]}, [(("length",), "float_type")]),
        ({"island": "Dream", "length": 12, "count": 1.5}, [(("count",), "int_type")]),
        ({"island": "Dream", "length": 12, "tagged": "yes"}, [(("tagged",), "bool_type")]),
        ({"island": "Dream", "length": 12, "colour": "red"}, [(("colour",), "extra_forbidden")]),
        ({"island": 1, "length": 12}, [(("island",), "enum")]),
        ({"island": True, "length": 12}, [(("island",), "enum")]),
    ],
)
def test_each_bad_value_is_reported_at_its_field(row: dict[str, object], expected: list[object]) -> None:
    assert errors_of([row]) == expected


def test_whole_number_floats_are_integers() -> None:
    validate_rows(SCHEMA, [{"island": "Dream", "length": 12, "count": 3.0}], batch=False)


def test_batch_errors_carry_the_row_index_and_every_row_is_checked() -> None:
    rows = [{"island": "Dream", "length": 12}, {"island": "Mars", "length": 12}, "not a row", {"length": 1}]
    assert errors_of(rows, batch=True) == [
        ((1, "island"), "enum"),
        ((2,), "dict_type"),
        ((3, "island"), "missing"),
    ]


def test_values_outside_the_training_range_are_taken_with_a_warning() -> None:
    rows = validate_rows(SCHEMA, [{"island": "Dream", "length": 9.5}, {"island": "Dream", "length": 12}], batch=True)
    assert row_warnings(SCHEMA, rows) == [
        [
            {
                "feature": "length",
                "value": 9.5,
                "type": "out_of_range",
                "message": "outside the range seen in training (10 to 20)",
                "min": 10.0,
                "max": 20.0,
            }
        ],
        [],
    ]


def test_an_unknown_category_is_taken_with_a_warning_only_where_the_model_accepts_it() -> None:
    open_schema = InputSchema([Feature("island", "category", choices=["Biscoe", "Dream"], accepts_unknown=True)])
    rows = validate_rows(open_schema, [{"island": "Mars"}], batch=False)
    assert [w["type"] for w in row_warnings(open_schema, rows)[0]] == ["unknown_category"]
    assert errors_of([{"island": "Mars", "length": 12}]) == [(("island",), "enum")]


def test_a_category_may_be_sent_as_the_number_or_text_of_a_known_one() -> None:
    schema = InputSchema([Feature("sex", "category", choices=["1", "2"]), Feature("grade", "category", choices=[1, 2])])
    assert validate_rows(schema, [{"sex": 1, "grade": "2"}], batch=False) == [{"sex": "1", "grade": 2}]


def test_a_boolean_is_the_number_0_or_1() -> None:
    assert validate_rows(SCHEMA, [{"island": "Dream", "length": True}], batch=False)[0]["length"] is True


def test_a_text_is_a_string_of_limited_length() -> None:
    schema = InputSchema([Feature("review", "text", max_length=5)])
    assert validate_rows(schema, [{"review": "fine"}], batch=False) == [{"review": "fine"}]
    with pytest.raises(InvalidInputs) as caught:
        validate_rows(schema, [{"review": "too long"}, {"review": 3}], batch=True)
    assert [(e.loc, e.type) for e in caught.value.errors] == [
        ((0, "review"), "string_too_long"),
        ((1, "review"), "string_type"),
    ]


MIXED = InputSchema(
    [
        Feature("island", "category", choices=["Biscoe", "Dream", 1]),
        Feature("length", "number"),
        Feature("count", "integer", required=False),
        Feature("tagged", "boolean", required=False),
        Feature("note", "text", required=False, max_length=3),
    ]
)
ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(alphabet="Dream1 .", max_size=5),  # a small alphabet: the full one's table takes seconds to build
    st.sampled_from(["Biscoe", "Dream", 1, "1", 1.0, True, 3.0, 2**63, -(2**63) - 1, 2**63 - 1]),
    st.lists(st.integers(), max_size=1),
)


@settings(deadline=None)  # run beside the rest of the suite on two cores, an example's time says nothing
@given(st.lists(st.dictionaries(st.sampled_from([*MIXED.names, "colour"]), ODD_VALUES), max_size=4))
def test_the_quick_checks_answer_as_the_full_ones_for_any_value(rows: list[dict[str, object]]) -> None:
    """validate_rows takes usual values by a quick test; what it answers must be what checking every value in full
    (`_coerced`, then `_check`) answers: the same rows, value for value and type for type, or the same errors."""
    errors, expected = [], []
    for index, row in enumerate(rows):
        errors += [((index, name), "extra_forbidden") for name in row if name not in MIXED.names]
        values = {}
        for feature in MIXED.features:
            values[feature.name] = _coerced(feature, row.get(feature.name))
            if problem := _check(feature, values[feature.name]):
                errors.append(((index, feature.name), problem[1]))
        expected.append(values)
    try:
        checked = validate_rows(MIXED, rows, batch=True)
    except InvalidInputs as caught:
        assert [(e.loc, e.type) for e in caught.errors] == errors
    else:
        assert not errors
        typed = [[(name, type(value), value) for name, value in row.items()] for row in checked]
        assert typed == [[(name, type(value), value) for name, value in row.items()] for row in expected]


RANGED = InputSchema(
    [
        Feature("island", "category", required=False, choices=["Biscoe", "Dream", 1], accepts_unknown=True),
        Feature("length", "number", required=False, min=10.0, max=20.0),
        Feature("count", "integer", required=False, min=0),
        Feature("weight", "number", required=False),
        Feature("tagged", "boolean", required=False),
    ]
)
NUMBERS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.sampled_from([10, 10.0, 20, 20.0, 9.999, 20.001]),
)
CHECKED_ROWS = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "island": st.sampled_from(["Biscoe", "Dream", 1, "1", 1.0, "Mars", 2, 3.5]),
            "length": NUMBERS,
            "count": st.one_of(st.integers(min_value=-5, max_value=5), st.integers(-5, 5).map(float), st.booleans()),
            "weight": NUMBERS,
            "tagged": st.booleans(),
        },
    ),
    max_size=4,
)


@settings(deadline=None)
@given(CHECKED_ROWS)
def test_the_quick_warning_checks_answer_as_the_full_ones_for_any_value(rows: list[dict[str, object]]) -> None:
    """row_warnings passes over usual values by a quick test; it must name exactly what `value_warning` names."""
    checked = validate_rows(RANGED, rows, batch=True)
    expected = [[w for f in RANGED.features if (w := value_warning(f, row.get(f.name))) is not None] for row in checked]
    assert row_warnings(RANGED, checked) == expected
