"""Read and write customs declarations: canonical, KCS and DATE files, as CSV or Parquet.

Readers only rename and derive columns; they return raw values (strings from CSV) so that
:data:`~illicitflows.trade.schema.DECLARATION_SCHEMA` does all typing and validation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

import numpy as np
import pandas as pd

from illicitflows.trade.schema import (
    COLUMNS,
    DECLARATION_SCHEMA,
    ID,
    LABEL,
    MIRROR_SCHEMA,
    MONTH_FORMAT,
)
from illicitflows.validation import RecordSchema, SchemaError, ValidationResult, accept

Format = Literal["canonical", "kcs", "date", "auto"]
FORMATS: tuple[str, ...] = get_args(Format)
PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})
DAY_FORMAT = "%Y-%m-%d"

#: Korea Customs Service header (file order) -> canonical column.
KCS_TO_CANONICAL = {
    "Declaration ID": ID, "Date": "date", "Office ID": "office_id",
    "Process Type": "process_type", "Import Type": "import_type", "Import Use": "import_use",
    "Payment Type": "payment_type", "Mode of Transport": "transport_mode",
    "Declarant ID": "declarant_id", "Importer ID": "importer_id", "Seller ID": "seller_id",
    "Courier ID": "courier_id", "HS6 Code": "hs6", "Country of Departure": "departure_country",
    "Country of Origin": "origin_country", "Tax Rate": "tax_rate", "Tax Type": "tax_type",
    "Country of Origin Indicator": "origin_indicator", "Net Mass": "net_mass_kg",
    "Item Price": "declared_value", "Fraud": LABEL, "Critical Fraud": "critical_fraud",
}
#: DATE paper synthetic data header (file order) -> canonical column, for the renamed ones.
DATE_TO_CANONICAL = {
    "sgd.id": ID, "sgd.date": "date", "importer.id": "importer_id",
    "declarant.id": "declarant_id", "country": "origin_country", "office.id": "office_id",
    "quantity": "quantity", "gross.weight": "net_mass_kg", "cif.value": "declared_value",
    "total.taxes": "duty", "illicit": LABEL, "revenue": "revenue",
}
DATE_HEADER = [
    "sgd.id", "sgd.date", "importer.id", "declarant.id", "country", "office.id", "tariff.code",
    "quantity", "gross.weight", "fob.value", "cif.value", "total.taxes", "illicit", "revenue",
]
#: A column that only one format has, used by ``fmt="auto"``.
_MARKERS = {"Declaration ID": "kcs", "sgd.id": "date", ID: "canonical"}


def read_table(path: Path | str) -> pd.DataFrame:
    """A CSV file as strings ("" for empty cells, never NA guesses) or a Parquet file as is."""
    path = Path(path)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig",
                       engine="pyarrow")


def detect_format(columns: pd.Index | list[str]) -> str:
    """``kcs``, ``date`` or ``canonical`` from a header; :class:`SchemaError` otherwise."""
    for marker, fmt in _MARKERS.items():
        if marker in columns:
            return fmt
    raise SchemaError(f"unrecognised declaration header {list(columns)[:8]}: expected a "
                      f"canonical ({ID!r}), KCS ('Declaration ID') or DATE ('sgd.id') file")


def read_declarations(path: Path | str, fmt: Format = "canonical") -> pd.DataFrame:
    """Raw canonical columns of a declaration file, not yet typed or validated."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown declaration format {fmt!r}: expected one of {FORMATS}")
    raw = read_table(path)
    fmt = detect_format(raw.columns) if fmt == "auto" else fmt
    converters = {"kcs": from_kcs, "date": from_date}
    return _with_optional_columns(converters[fmt](raw) if fmt in converters else raw)


def load_declarations(path: Path | str, fmt: Format = "auto", strict: bool = False,
                      quarantine: Path | None = None) -> tuple[pd.DataFrame, ValidationResult]:
    """Read, validate and accept declarations; the frame holds the good records, typed."""
    result = DECLARATION_SCHEMA.parse(read_declarations(path, fmt))
    frame = accept(result, strict=strict, quarantine=quarantine)
    return text_as_str(frame, DECLARATION_SCHEMA), result


def from_kcs(raw: pd.DataFrame) -> pd.DataFrame:
    """Rename KCS columns; Item Price is the declared value in KRW."""
    _require(raw, list(KCS_TO_CANONICAL), "KCS")
    frame = raw[list(KCS_TO_CANONICAL)].rename(columns=KCS_TO_CANONICAL)
    frame["currency"] = "KRW"
    return frame


def from_date(raw: pd.DataFrame) -> pd.DataFrame:
    """Map DATE columns: hs6 from the tariff code, value = CIF in USD, tax rate from taxes/CIF.

    ``gross.weight`` stands in for the net mass: it includes packaging, so unit values per kg
    read a little low; the bias is shared by every DATE record. FOB values are dropped. A
    zero or unreadable CIF leaves the tax rate empty, which validation reports.
    """
    _require(raw, DATE_HEADER, "DATE")
    frame = raw[list(DATE_TO_CANONICAL)].rename(columns=DATE_TO_CANONICAL)
    frame["hs6"] = _hs6_from_tariff_code(raw["tariff.code"])
    cif = pd.to_numeric(raw["cif.value"], errors="coerce")
    taxes = pd.to_numeric(raw["total.taxes"], errors="coerce")
    frame["tax_rate"] = (100.0 * taxes / cif).where(cif > 0)
    frame["currency"] = "USD"
    return frame


def text_as_str(frame: pd.DataFrame, schema: RecordSchema) -> pd.DataFrame:
    """The schema's text columns as ``str`` with "" for missing values; others unchanged."""
    frame = frame.copy()
    for f in schema.fields:
        if f.kind == "text" and f.name in frame.columns:
            frame[f.name] = frame[f.name].fillna("").astype("str")
    return frame


def write_declarations(frame: pd.DataFrame, path: Path | str) -> Path:
    """Write canonical declarations as CSV (dates as ``YYYY-MM-DD``) or Parquet, by suffix."""
    return _write(frame, Path(path), DAY_FORMAT)


def write_date_format(frame: pd.DataFrame, path: Path | str, cif_per_fob: float = 1.06) -> Path:
    """Write canonical declarations in the DATE paper's layout (:data:`DATE_HEADER`), which
    :func:`from_date` reads back: 10-digit tariff codes, ``yy-mm-dd`` dates, the declared value
    as CIF (FOB = CIF / ``cif_per_fob``), the duty as total taxes. Columns DATE has no place
    for (seller, departure, tax type, transport mode, ...) are left out."""
    value = frame["declared_value"].astype("float64")
    computed = value * frame["tax_rate"].astype("float64") / 100.0
    taxes = frame["duty"].astype("float64").fillna(computed) if "duty" in frame else computed
    out = pd.DataFrame({
        "sgd.id": frame[ID], "sgd.date": pd.to_datetime(frame["date"]).dt.strftime("%y-%m-%d"),
        "importer.id": frame["importer_id"], "declarant.id": frame["declarant_id"],
        "country": frame["origin_country"], "office.id": frame["office_id"],
        "tariff.code": frame["hs6"].astype(str) + "0000", "quantity": frame["quantity"],
        "gross.weight": frame["net_mass_kg"], "fob.value": value / cif_per_fob,
        "cif.value": value, "total.taxes": taxes,
    })
    if LABEL in frame.columns:
        out["illicit"] = frame[LABEL]
    if "revenue" in frame.columns:
        out["revenue"] = frame["revenue"]
    return _write(out, Path(path), DAY_FORMAT)


def load_mirror_exports(path: Path | str, strict: bool = False,
                        quarantine: Path | None = None) -> tuple[pd.DataFrame, ValidationResult]:
    """Read, validate and accept partner export statistics (see ``MIRROR_SCHEMA``)."""
    result = MIRROR_SCHEMA.parse(read_table(path))
    frame = accept(result, strict=strict, quarantine=quarantine)
    return text_as_str(frame, MIRROR_SCHEMA), result


def write_mirror_exports(frame: pd.DataFrame, path: Path | str) -> Path:
    """Write mirror exports as CSV (months as ``YYYY-MM``) or Parquet, by suffix."""
    return _write(frame, Path(path), MONTH_FORMAT)


def _write(frame: pd.DataFrame, path: Path, date_format: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False, date_format=date_format)
    return path


def _require(raw: pd.DataFrame, header: list[str], source: str) -> None:
    missing = [c for c in header if c not in raw.columns]
    if missing:
        raise SchemaError(f"{source} file: missing column(s): {', '.join(missing)}")


def _hs6_from_tariff_code(codes: pd.Series) -> pd.Series:
    """First 6 digits of a 10-digit tariff code, restoring one lost leading zero."""
    text = codes.astype("string").str.strip()
    digits = text.str.fullmatch(r"\d{9,10}").fillna(False).to_numpy(dtype=bool)
    return text.where(~digits, text.str.zfill(10).str[:6]).astype(object)


def _with_optional_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Add every absent optional canonical column but the label, empty."""
    for name in COLUMNS:
        f = DECLARATION_SCHEMA.field(name)
        if name not in frame.columns and name != LABEL and not f.required:
            frame[name] = np.nan if f.kind == "number" else ""
    return frame
