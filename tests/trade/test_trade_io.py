"""Declaration loaders: KCS, DATE and canonical files, format detection, writing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from illicitflows.trade.io import (
    detect_format,
    load_declarations,
    read_declarations,
    read_table,
    write_declarations,
)
from illicitflows.trade.schema import COLUMNS, KCS_PASS_THROUGH, LABEL
from illicitflows.validation import SchemaError, ValidationError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "trade"
KCS_SAMPLE = FIXTURES / "kcs_sample.csv"
DATE_SAMPLE = FIXTURES / "date_sample.csv"
SHARED_KCS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "kcs"


def _text_columns_are_str(frame: pd.DataFrame) -> bool:
    text = ["declaration_id", "office_id", "importer_id", "hs6", "origin_country", "currency",
            "typology", "courier_id"]
    return all(frame[c].dtype == "str" for c in text)


def test_kcs_sample_maps_to_canonical_columns() -> None:
    frame, result = load_declarations(KCS_SAMPLE, fmt="kcs")
    assert result.issues.empty
    assert len(frame) == 30
    assert list(frame.columns) == COLUMNS + KCS_PASS_THROUGH
    assert _text_columns_are_str(frame)
    assert (frame["currency"] == "KRW").all()
    assert frame[LABEL].dtype == np.int8
    first = frame.iloc[0]
    assert first["declaration_id"] == "97061800" and first["hs6"] == "440890"
    assert first["declared_value"] == pytest.approx(372254.4)
    assert first["net_mass_kg"] == pytest.approx(108.0)
    assert first["transport_mode"] == "10" and first["tax_type"] == "FEU1"
    assert first["date"] == pd.Timestamp("2020-01-01")


def test_kcs_short_hs_code_is_padded_and_empty_ids_are_blank() -> None:
    frame, _ = load_declarations(KCS_SAMPLE, fmt="kcs")
    row = frame.set_index("declaration_id").loc["34131149"]
    assert row["hs6"] == "071080"
    assert row["seller_id"] == "" and row["courier_id"] == ""
    assert (frame["courier_id"] != "").sum() == 6
    assert frame["quantity"].isna().all() and frame["revenue"].isna().all()


def test_kcs_missing_column_is_a_schema_error(tmp_path: Path) -> None:
    path = tmp_path / "kcs.csv"
    pd.read_csv(KCS_SAMPLE, dtype=str).drop(columns=["Item Price"]).to_csv(path, index=False)
    with pytest.raises(SchemaError, match="Item Price"):
        read_declarations(path, fmt="kcs")


def test_date_sample_derives_hs6_rate_and_currency() -> None:
    frame, result = load_declarations(DATE_SAMPLE, fmt="date")
    assert result.errors.empty
    assert set(result.warnings["column"]) == {"origin_country"}  # anonymised CNTRY codes
    assert len(frame) == 20
    assert list(frame.columns) == COLUMNS
    assert _text_columns_are_str(frame)
    first = frame.iloc[0]
    assert first["date"] == pd.Timestamp("2013-01-02")
    assert first["hs6"] == "870323" and first["origin_country"] == "CNTRY376"
    assert first["currency"] == "USD"
    assert first["declared_value"] == pytest.approx(1943.388289)
    assert first["net_mass_kg"] == pytest.approx(96.305598)
    assert first["duty"] == pytest.approx(468.218151)
    assert first["tax_rate"] == pytest.approx(100 * 468.218151 / 1943.388289)
    assert frame.set_index("declaration_id").loc["SGD10", "hs6"] == "090121"
    assert frame[LABEL].sum() == 6
    assert frame.loc[frame[LABEL] == 1, "revenue"].gt(0).all()


def test_date_zero_cif_leaves_the_tax_rate_missing(tmp_path: Path) -> None:
    raw = pd.read_csv(DATE_SAMPLE, dtype=str)
    raw.loc[3, "cif.value"] = "0"
    path = tmp_path / "date.csv"
    raw.to_csv(path, index=False)
    with pytest.raises(ValidationError, match="row 3, column tax_rate: missing value"):
        load_declarations(path, fmt="date", strict=True)


@pytest.mark.parametrize(("path", "fmt"), [(KCS_SAMPLE, "kcs"), (DATE_SAMPLE, "date")])
def test_auto_detects_the_format(path: Path, fmt: str) -> None:
    assert detect_format(read_table(path).columns) == fmt
    pd.testing.assert_frame_equal(read_declarations(path, fmt="auto"),
                                  read_declarations(path, fmt=fmt))


def test_unknown_header_and_format_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    pd.DataFrame({"id": ["1"], "amount": ["2"]}).to_csv(path, index=False)
    with pytest.raises(SchemaError, match="unrecognised declaration header"):
        read_declarations(path, fmt="auto")
    with pytest.raises(ValueError, match="unknown declaration format"):
        read_declarations(KCS_SAMPLE, fmt="xml")  # type: ignore[arg-type]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_canonical_round_trip_keeps_kcs_columns(tmp_path: Path, suffix: str) -> None:
    frame, _ = load_declarations(KCS_SAMPLE)
    path = write_declarations(frame, tmp_path / f"declarations{suffix}")
    assert detect_format(read_table(path).columns) == "canonical"
    again, result = load_declarations(path)
    assert result.issues.empty
    pd.testing.assert_frame_equal(again, frame)


def test_bad_records_go_to_quarantine(tmp_path: Path) -> None:
    raw = pd.read_csv(KCS_SAMPLE, dtype=str, keep_default_na=False)
    raw.loc[4, "Net Mass"] = "-3"
    raw.loc[7, "HS6 Code"] = "12AB56"
    path = tmp_path / "kcs.csv"
    raw.to_csv(path, index=False)
    quarantine = tmp_path / "kcs.quarantine.csv"
    frame, result = load_declarations(path, quarantine=quarantine)
    assert len(frame) == 28
    assert list(result.bad_rows) == [4, 7]
    assert pd.read_csv(quarantine)["_row"].tolist() == [4, 7]


@pytest.mark.parametrize(("name", "rows", "fraud_rate"), [
    ("df_syn_train_eng.csv", 37_385, 0.217),
    ("df_syn_valid_eng.csv", 8_134, 0.209),
])
def test_shared_kcs_files_load_completely(name: str, rows: int, fraud_rate: float) -> None:
    if not SHARED_KCS.is_dir():
        pytest.skip("../shared/data/kcs not found: KCS loader test needs the shared data")
    frame, result = load_declarations(SHARED_KCS / name, strict=True)
    assert result.errors.empty
    assert len(frame) == rows
    assert frame[LABEL].mean() == pytest.approx(fraud_rate, abs=0.001)
    assert frame["hs6"].str.fullmatch(r"\d{6}").all()
    assert (frame["seller_id"] == "").any() and (frame["courier_id"] == "").any()


def test_simulated_declarations_round_trip_through_the_date_layout(tmp_path: Path) -> None:
    from illicitflows.trade.io import write_date_format
    from illicitflows.trade.simulate import TradeSimulationConfig, simulate_trade

    canonical = simulate_trade(TradeSimulationConfig(declarations=300, seed=4)).declarations
    path = write_date_format(canonical, tmp_path / "date.csv")
    assert pd.read_csv(path, nrows=0).columns[:7].tolist() == [
        "sgd.id", "sgd.date", "importer.id", "declarant.id", "country", "office.id",
        "tariff.code"]
    frame, result = load_declarations(path)  # detected as DATE
    assert len(frame) == len(canonical) and len(result.bad_rows) == 0
    for column in ("declaration_id", "hs6", "origin_country", "importer_id"):
        assert frame[column].tolist() == canonical[column].astype(str).tolist()
    # DATE keeps the duty (rounded to cents), not the rate: the rate is read back from it
    np.testing.assert_allclose(frame["tax_rate"], canonical["tax_rate"], rtol=1e-3)
    np.testing.assert_allclose(frame["revenue"], canonical["revenue"].fillna(0), atol=1e-6)
    assert (frame["date"].dt.normalize() == pd.to_datetime(canonical["date"])).all()
    assert set(frame["seller_id"]) == {""}  # DATE has no seller
