"""The shared validation mechanism: typed parsing, issues per record and field, the policy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from illicitflows.validation import (
    Field,
    RecordSchema,
    RowCheck,
    SchemaError,
    ValidationError,
    accept,
)

SCHEMA = RecordSchema(
    name="things",
    fields=(
        Field("id", "text"),
        Field("when", "timestamp", timestamp_formats=("%Y/%m/%d %H:%M",)),
        Field("amount", "number", min_value=0),
        Field("colour", "text", allowed=frozenset({"red", "blue"})),
        Field("code", "text", pad_digits=6, required=False),
        Field("label", "flag", required=False),
    ),
    checks=(RowCheck("colour", "blue is suspicious", lambda f: (f["colour"] == "blue").to_numpy(),
                     "warning"),),
    unique_id="id",
)


def raw(**overrides: list) -> pd.DataFrame:
    base = {"id": ["a", "b", "c"], "when": ["2022/09/01 00:20"] * 3, "amount": ["1", "2.5", "3"],
            "colour": ["red", "red", "red"], "code": ["90121", "123456", ""],
            "label": ["0", "1", "0"]}
    base.update(overrides)
    return pd.DataFrame(base)


def test_clean_input_is_typed() -> None:
    result = SCHEMA.parse(raw())
    assert result.issues.empty
    frame = result.frame
    assert pd.api.types.is_datetime64_any_dtype(frame["when"])
    assert pd.api.types.is_numeric_dtype(frame["amount"])
    assert frame["code"].tolist()[:2] == ["090121", "123456"]
    assert pd.isna(frame["code"].iloc[2])
    assert frame["label"].tolist() == [0, 1, 0]


@pytest.mark.parametrize(("column", "values", "reason"), [
    ("amount", ["1", "-2", "3"], "negative value"),
    ("amount", ["1", "", "3"], "missing value"),
    ("amount", ["1", "abc", "3"], "not a number"),
    ("amount", ["1", "inf", "3"], "infinite number"),
    ("when", ["2022/09/01 00:20", "yesterday", "2022/09/01 00:20"], "unparseable timestamp"),
    ("colour", ["red", "green", "red"], "unknown colour"),
    ("id", ["a", "a", "c"], "duplicate id"),
    ("label", ["0", "2", "0"], "flag must be 0 or 1"),
])
def test_each_bad_value_names_row_and_column(column: str, values: list, reason: str) -> None:
    result = SCHEMA.parse(raw(**{column: values}))
    errors = result.errors
    assert errors[["row", "column", "reason"]].values.tolist() == [[1, column, reason]]
    assert f"row 1, column {column}: {reason}" in result.describe()


def test_warning_keeps_the_record() -> None:
    result = SCHEMA.parse(raw(colour=["red", "blue", "red"]))
    assert result.errors.empty
    assert result.warnings["row"].tolist() == [1]
    assert len(accept(result)) == 3


def test_missing_required_column_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="amount"):
        SCHEMA.parse(raw().drop(columns="amount"))


def test_strict_policy_raises_with_every_bad_record(tmp_path) -> None:
    result = SCHEMA.parse(raw(amount=["-1", "x", "3"]))
    with pytest.raises(ValidationError) as caught:
        accept(result, strict=True, quarantine=tmp_path / "q.csv")
    assert "row 0, column amount" in str(caught.value)
    assert "row 1, column amount" in str(caught.value)
    assert not (tmp_path / "q.csv").exists()


def test_default_policy_quarantines_bad_records(tmp_path) -> None:
    result = SCHEMA.parse(raw(amount=["1", "-2", "3"], when=["2022/09/01 00:20", "?", "nope"]))
    target = tmp_path / "q.csv"
    good = accept(result, quarantine=target)
    assert good["id"].tolist() == ["a"]
    bad = pd.read_csv(target, dtype=str)
    assert bad["_row"].tolist() == ["1", "2"]
    assert bad.loc[0, "_issues"] == "amount: negative value; when: unparseable timestamp"
    assert bad.loc[1, "amount"] == "3"  # original values are kept


def test_without_quarantine_bad_records_are_never_dropped() -> None:
    result = SCHEMA.parse(raw(amount=["1", "-2", "3"]))
    with pytest.raises(ValidationError):
        accept(result)


def test_iso_timestamps_from_json_are_accepted() -> None:
    result = SCHEMA.parse(raw(when=["2022-09-01T00:20:00", "2022-09-01T00:20:00Z",
                                    "2022/09/01 00:20"]))
    assert result.issues.empty
    assert (result.frame["when"] == np.datetime64("2022-09-01T00:20")).all()


def test_times_outside_the_representable_range_are_unparseable() -> None:
    result = SCHEMA.parse(raw(when=["2022/09/01 00:20", "3000-01-01T00:00:00", "1600/01/01 00:00"]))
    errors = result.errors[["row", "column", "reason"]].values.tolist()
    assert errors == [[1, "when", "unparseable timestamp"], [2, "when", "unparseable timestamp"]]


def test_a_bad_flag_next_to_a_missing_one_is_an_issue() -> None:
    result = SCHEMA.parse(raw(label=["0", "0.5", ""]))
    assert result.errors[["row", "column", "reason"]].values.tolist() == [
        [1, "label", "flag must be 0 or 1"]]
    assert str(result.frame["label"].dtype) == "Int8"
    assert result.frame["label"].tolist()[0] == 0 and result.frame["label"].isna().tolist() == [
        False, True, True]
