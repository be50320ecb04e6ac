"""The canonical declaration schema: typing, and issues that name the record and the column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from illicitflows.trade.schema import (
    COLUMNS,
    DECLARATION_SCHEMA,
    LABEL,
    MIRROR_SCHEMA,
    TYPOLOGIES,
    revenue_at_stake,
)
from illicitflows.validation import SchemaError, ValidationError, accept


def _raw(rows: int = 4) -> pd.DataFrame:
    """Valid raw declarations, as strings like a CSV reader gives them."""
    return pd.DataFrame({
        "declaration_id": [f"D{i}" for i in range(rows)],
        "date": ["2022-03-01"] * rows,
        "office_id": ["OF01"] * rows,
        "importer_id": ["IMP1"] * rows,
        "declarant_id": ["DCL1"] * rows,
        "seller_id": [""] * rows,
        "courier_id": [""] * rows,
        "hs6": ["850440"] * rows,
        "origin_country": ["CN"] * rows,
        "departure_country": ["CN"] * rows,
        "transport_mode": ["10"] * rows,
        "quantity": ["10"] * rows,
        "net_mass_kg": ["120.5"] * rows,
        "declared_value": ["1000"] * rows,
        "currency": ["USD"] * rows,
        "tax_rate": ["8"] * rows,
        "tax_type": ["MFN"] * rows,
        "duty": ["80"] * rows,
        "fraud": ["0"] * rows,
        "typology": [""] * rows,
        "revenue": ["0"] * rows,
    })


def _with(raw: pd.DataFrame, row: int, column: str, value: str) -> pd.DataFrame:
    raw.loc[row, column] = value
    return raw


def _issue(raw: pd.DataFrame, row: int, column: str, value: str) -> pd.DataFrame:
    return DECLARATION_SCHEMA.parse(_with(raw, row, column, value)).issues


def _has(issues: pd.DataFrame, row: int, column: str, reason: str,
         severity: str = "error") -> bool:
    hit = ((issues["row"] == row) & (issues["column"] == column)
           & (issues["reason"] == reason) & (issues["severity"] == severity))
    return bool(hit.any())


def test_valid_records_are_typed_in_canonical_order() -> None:
    result = DECLARATION_SCHEMA.parse(_raw())
    assert result.issues.empty
    frame = result.frame
    assert list(frame.columns) == COLUMNS
    assert pd.api.types.is_datetime64_any_dtype(frame["date"])
    for column in ("quantity", "net_mass_kg", "declared_value", "tax_rate", "duty", "revenue"):
        assert pd.api.types.is_numeric_dtype(frame[column]), column
    assert frame[LABEL].dtype == np.int8


@pytest.mark.parametrize(("column", "value", "reason"), [
    ("declared_value", "-5", "negative value"),
    ("net_mass_kg", "-0.1", "negative value"),
    ("declaration_id", "", "missing value"),
    ("date", "2022-13-45", "unparseable timestamp"),
    ("hs6", "85A440", "not a 6-digit HS code"),
    ("hs6", "8504401", "not a 6-digit HS code"),
    ("tax_rate", "eight", "not a number"),
    ("currency", "usd", "not an ISO 4217 code"),
    ("typology", "SMUGGLING", "unknown typology"),
    ("fraud", "2", "flag must be 0 or 1"),
])
def test_bad_value_names_row_and_column(column: str, value: str, reason: str) -> None:
    issues = _issue(_raw(), 2, column, value)
    assert _has(issues, 2, column, reason), issues


def test_duplicate_declaration_id_names_the_second_record() -> None:
    issues = _issue(_raw(), 3, "declaration_id", "D1")
    assert _has(issues, 3, "declaration_id", "duplicate id")
    assert not _has(issues, 1, "declaration_id", "duplicate id")


def test_missing_both_quantity_and_mass_is_an_error() -> None:
    raw = _raw()
    raw.loc[1, ["quantity", "net_mass_kg"]] = ""
    raw.loc[2, "quantity"] = ""
    raw.loc[3, "net_mass_kg"] = ""
    issues = DECLARATION_SCHEMA.parse(raw).issues
    assert _has(issues, 1, "net_mass_kg", "missing both quantity and net mass")
    assert set(issues["row"]) == {1}


def test_short_hs_codes_are_zero_padded() -> None:
    result = DECLARATION_SCHEMA.parse(_with(_raw(), 0, "hs6", "90121"))
    assert result.issues.empty
    assert result.frame.loc[0, "hs6"] == "090121"


def test_non_iso_country_is_a_warning_and_the_record_is_kept() -> None:
    result = DECLARATION_SCHEMA.parse(_with(_raw(), 0, "origin_country", "CNTRY376"))
    assert _has(result.issues, 0, "origin_country", "not an ISO 3166-1 alpha-2 code (kept)",
                "warning")
    assert len(accept(result)) == 4


def test_typology_requires_the_fraud_label() -> None:
    raw = _raw()
    raw.loc[0, "typology"] = TYPOLOGIES[0]
    raw.loc[1, ["typology", "fraud"]] = [TYPOLOGIES[1], "1"]
    issues = DECLARATION_SCHEMA.parse(raw).issues
    assert _has(issues, 0, "typology", "typology on a non-fraud record")
    assert not _has(issues, 1, "typology", "typology on a non-fraud record")


def test_optional_columns_may_be_absent_but_required_ones_may_not() -> None:
    optional = ["seller_id", "courier_id", "departure_country", "transport_mode", "quantity",
                "tax_type", "duty", "fraud", "typology", "revenue"]
    assert DECLARATION_SCHEMA.parse(_raw().drop(columns=optional)).issues.empty
    with pytest.raises(SchemaError, match="hs6"):
        DECLARATION_SCHEMA.parse(_raw().drop(columns=["hs6"]))


def test_strict_mode_raises_and_quarantine_keeps_the_bad_record(tmp_path) -> None:
    result = DECLARATION_SCHEMA.parse(_with(_raw(), 0, "declared_value", "-5"))
    with pytest.raises(ValidationError, match="row 0, column declared_value: negative value"):
        accept(result, strict=True)
    quarantine = tmp_path / "bad.csv"
    good = accept(result, quarantine=quarantine)
    assert len(good) == 3
    bad = pd.read_csv(quarantine, dtype=str)
    assert bad.loc[0, "_row"] == "0" and "declared_value" in bad.loc[0, "_issues"]


def test_revenue_at_stake_prefers_the_revenue_column() -> None:
    frame = pd.DataFrame({"declared_value": [1000.0, 500.0, 200.0], "tax_rate": [8.0, 10.0, 5.0],
                          LABEL: [1, 1, 0], "revenue": [30.0, np.nan, np.nan]})
    np.testing.assert_allclose(revenue_at_stake(frame), [30.0, 50.0, 0.0])


def test_revenue_at_stake_without_revenue_is_the_duty_of_fraud_records() -> None:
    frame = pd.DataFrame({"declared_value": [1000.0, 500.0], "tax_rate": [8.0, 10.0],
                          LABEL: [0, 1]})
    np.testing.assert_allclose(revenue_at_stake(frame), [0.0, 50.0])
    with pytest.raises(ValueError, match="revenue"):
        revenue_at_stake(frame.drop(columns=[LABEL]))


def test_mirror_schema_parses_months() -> None:
    raw = pd.DataFrame({"month": ["2022-01", "2022-02"], "hs6": ["90121", "850440"],
                        "origin_country": ["VN", "CN"], "fob_value": ["10.5", "-1"],
                        "net_mass_kg": ["3", "4"]})
    result = MIRROR_SCHEMA.parse(raw)
    assert result.frame.loc[0, "month"] == pd.Timestamp("2022-01-01")
    assert result.frame.loc[0, "hs6"] == "090121"
    assert _has(result.issues, 1, "fob_value", "negative value")
