"""Canonical payment-transaction schema (IBM AMLworld CSV, in snake_case inside the package)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from illicitflows.validation import Field, RecordSchema, RowCheck

#: IBM AMLworld header, in file order; the header repeats ``Account``.
IBM_HEADER = [
    "Timestamp", "From Bank", "Account", "To Bank", "Account", "Amount Received",
    "Receiving Currency", "Amount Paid", "Payment Currency", "Payment Format", "Is Laundering",
]
#: Canonical column names, in the same order as :data:`IBM_HEADER`.
COLUMNS = [
    "timestamp", "from_bank", "from_account", "to_bank", "to_account", "amount_received",
    "receiving_currency", "amount_paid", "payment_currency", "payment_format", "is_laundering",
]
LABEL = "is_laundering"
ID = "id"
TIMESTAMP_FORMAT = "%Y/%m/%d %H:%M"

#: USD value of one unit of each currency (IBM AMLworld names). A deployment can pass its own
#: table to the features; the simulator uses this one to price cross-currency payments.
USD_PER_UNIT: dict[str, float] = {
    "US Dollar": 1.0,
    "Euro": 1.0,
    "UK Pound": 1.16,
    "Swiss Franc": 1.02,
    "Yuan": 0.146,
    "Yen": 0.0070,
    "Rupee": 0.0122,
    "Canadian Dollar": 0.74,
    "Australian Dollar": 0.68,
    "Mexican Peso": 0.050,
    "Brazil Real": 0.19,
    "Ruble": 0.0165,
    "Shekel": 0.29,
    "Saudi Riyal": 0.266,
    "Bitcoin": 20000.0,
}
#: ISO 4217 codes (XBT for Bitcoin) of the IBM currency names; both spellings are accepted.
ISO_CODE: dict[str, str] = {
    "US Dollar": "USD", "Euro": "EUR", "UK Pound": "GBP", "Swiss Franc": "CHF", "Yuan": "CNY",
    "Yen": "JPY", "Rupee": "INR", "Canadian Dollar": "CAD", "Australian Dollar": "AUD",
    "Mexican Peso": "MXN", "Brazil Real": "BRL", "Ruble": "RUB", "Shekel": "ILS",
    "Saudi Riyal": "SAR", "Bitcoin": "XBT",
}
CURRENCIES = frozenset(USD_PER_UNIT) | frozenset(ISO_CODE.values())
PAYMENT_FORMATS = frozenset(
    {"Cheque", "Credit Card", "ACH", "Cash", "Wire", "Bitcoin", "Reinvestment"})


def usd_rate(currency: pd.Series, table: dict[str, float] | None = None) -> np.ndarray:
    """USD per unit for each currency name or ISO code (NaN where unknown)."""
    table = dict(table or USD_PER_UNIT)
    table.update({ISO_CODE[name]: rate for name, rate in list(table.items()) if name in ISO_CODE})
    return currency.map(table).to_numpy(dtype=np.float64)


def _self_transfer(frame: pd.DataFrame) -> np.ndarray:
    return ((frame["from_bank"] == frame["to_bank"])
            & (frame["from_account"] == frame["to_account"])).to_numpy(dtype=bool)


TRANSACTION_SCHEMA = RecordSchema(
    name="transactions",
    fields=(
        Field(ID, "text", required=False),
        Field("timestamp", "timestamp", timestamp_formats=(TIMESTAMP_FORMAT, "%Y/%m/%d %H:%M:%S")),
        Field("from_bank", "text"),
        Field("from_account", "text"),
        Field("to_bank", "text"),
        Field("to_account", "text"),
        Field("amount_received", "number", min_value=0),
        Field("receiving_currency", "text", allowed=CURRENCIES),
        Field("amount_paid", "number", min_value=0),
        Field("payment_currency", "text", allowed=CURRENCIES),
        Field("payment_format", "text", allowed=PAYMENT_FORMATS),
        Field(LABEL, "flag", required=False),
    ),
    checks=(
        RowCheck("to_account", "self-transfer (allowed, flagged)", _self_transfer, "warning"),
    ),
    unique_id=ID,
)
