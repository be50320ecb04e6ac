"""Canonical customs import declaration schema (snake_case), shared by every trade source.

One record is one goods item of an import declaration. Values are in the declaration's
``currency`` (USD for simulated and DATE data, KRW for the Korea Customs Service data). Optional
text columns hold ``""`` when absent once loaded; optional numbers hold NaN.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from illicitflows.validation import Field, RecordSchema, RowCheck

LABEL = "fraud"
ID = "declaration_id"
#: Fraud typologies, as written in the ``typology`` column ("" for clean declarations).
TYPOLOGIES = (
    "UNDER-INVOICING", "OVER-INVOICING", "HS-MISCLASSIFICATION", "FALSE-ORIGIN",
    "QUANTITY-MISDECLARATION", "PHANTOM-SHIPMENT",
)
#: Canonical columns, in order. ``revenue`` is the duty at stake (see :func:`revenue_at_stake`).
COLUMNS = [
    ID, "date", "office_id", "importer_id", "declarant_id", "seller_id", "courier_id", "hs6",
    "origin_country", "departure_country", "transport_mode", "quantity", "net_mass_kg",
    "declared_value", "currency", "tax_rate", "tax_type", "duty", LABEL, "typology", "revenue",
]
#: Korea Customs Service columns kept in the canonical frame when the source has them.
KCS_PASS_THROUGH = [
    "process_type", "import_type", "import_use", "payment_type", "origin_indicator",
    "critical_fraud",
]
#: Day-resolution date formats: ISO, then the DATE paper's ``yy-mm-dd``.
DATE_FORMATS = ("%Y-%m-%d", "%y-%m-%d")
#: Mirror (partner export) statistics: one row per (month, hs6, origin_country).
MIRROR_COLUMNS = ["month", "hs6", "origin_country", "fob_value", "net_mass_kg"]
MONTH_FORMAT = "%Y-%m"


def revenue_at_stake(frame: pd.DataFrame) -> np.ndarray:
    """Duty at stake per declaration, in the declaration currency.

    The ``revenue`` column where it is known (simulated and DATE data). Elsewhere, e.g. for KCS
    data, the fallback is the declared duty of fraudulent records, ``declared_value * tax_rate /
    100 * fraud`` (KCS: Item Price x Tax Rate / 100), and 0 for clean ones.
    """
    if LABEL not in frame.columns:
        if "revenue" in frame.columns and frame["revenue"].notna().all():
            return frame["revenue"].to_numpy(dtype=np.float64)
        raise ValueError("revenue_at_stake needs a complete 'revenue' column or the 'fraud' label")
    label = frame[LABEL].astype("float64")
    fallback = frame["declared_value"] * frame["tax_rate"] / 100.0 * label
    revenue = frame["revenue"].fillna(fallback) if "revenue" in frame.columns else fallback
    return revenue.to_numpy(dtype=np.float64, na_value=np.nan)


def _not_matching(column: str, pattern: str) -> Callable[[pd.DataFrame], np.ndarray]:
    """A check flagging present values of ``column`` that do not fully match ``pattern``."""

    def bad(frame: pd.DataFrame) -> np.ndarray:
        text = frame[column].astype("string")
        return (text.notna() & ~text.str.fullmatch(pattern).fillna(True)).to_numpy(dtype=bool)

    return bad


def _no_quantity_nor_mass(frame: pd.DataFrame) -> np.ndarray:
    missing = pd.Series(True, index=frame.index)
    for column in ("quantity", "net_mass_kg"):
        if column in frame.columns:
            missing &= frame[column].isna()
    return missing.to_numpy(dtype=bool)


def _typology_without_fraud(frame: pd.DataFrame) -> np.ndarray:
    if LABEL not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    named = frame["typology"].notna().to_numpy()
    return named & (frame[LABEL].astype("float64").to_numpy() == 0)


_COUNTRY = r"[A-Z]{2}"
_ISO2 = "not an ISO 3166-1 alpha-2 code (kept)"

DECLARATION_SCHEMA = RecordSchema(
    name="declarations",
    fields=(
        Field(ID, "text"),
        Field("date", "timestamp", timestamp_formats=DATE_FORMATS),
        Field("office_id", "text"),
        Field("importer_id", "text"),
        Field("declarant_id", "text"),
        Field("seller_id", "text", required=False),
        Field("courier_id", "text", required=False),
        Field("hs6", "text", pad_digits=6),
        Field("origin_country", "text"),
        Field("departure_country", "text", required=False),
        Field("transport_mode", "text", required=False),
        Field("quantity", "number", required=False, min_value=0),
        Field("net_mass_kg", "number", required=False, min_value=0),
        Field("declared_value", "number", min_value=0),
        Field("currency", "text"),
        Field("tax_rate", "number", min_value=0),
        Field("tax_type", "text", required=False),
        Field("duty", "number", required=False, min_value=0),
        Field(LABEL, "flag", required=False),
        Field("typology", "text", required=False, allowed=frozenset(TYPOLOGIES)),
        Field("revenue", "number", required=False, min_value=0),
        *(Field(name, "text", required=False) for name in KCS_PASS_THROUGH[:-1]),
        Field("critical_fraud", "number", required=False, min_value=0),
    ),
    checks=(
        RowCheck("hs6", "not a 6-digit HS code", _not_matching("hs6", r"\d{6}")),
        RowCheck("currency", "not an ISO 4217 code", _not_matching("currency", r"[A-Z]{3}")),
        RowCheck("origin_country", _ISO2, _not_matching("origin_country", _COUNTRY), "warning"),
        RowCheck("departure_country", _ISO2, _not_matching("departure_country", _COUNTRY),
                 "warning"),
        RowCheck("net_mass_kg", "missing both quantity and net mass", _no_quantity_nor_mass),
        RowCheck("typology", "typology on a non-fraud record", _typology_without_fraud),
    ),
    unique_id=ID,
)

MIRROR_SCHEMA = RecordSchema(
    name="mirror_exports",
    fields=(
        Field("month", "timestamp", timestamp_formats=(MONTH_FORMAT, "%Y-%m-%d")),
        Field("hs6", "text", pad_digits=6),
        Field("origin_country", "text"),
        Field("fob_value", "number", min_value=0),
        Field("net_mass_kg", "number", required=False, min_value=0),
    ),
    checks=(
        RowCheck("hs6", "not a 6-digit HS code", _not_matching("hs6", r"\d{6}")),
        RowCheck("origin_country", _ISO2, _not_matching("origin_country", _COUNTRY), "warning"),
    ),
)
