"""Read and write payment transactions: IBM AMLworld CSV, canonical Parquet, IBM AMLSim output."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from illicitflows.transactions.schema import (
    COLUMNS,
    IBM_HEADER,
    LABEL,
    TIMESTAMP_FORMAT,
    TRANSACTION_SCHEMA,
    USD_PER_UNIT,
    usd_rate,
)
from illicitflows.validation import SchemaError, ValidationResult, accept

TransactionFormat = Literal["ibm", "amlsim", "parquet", "auto"]
AMLSIM_DAY0 = pd.Timestamp("2017-01-01")
AMLSIM_BANK = "AMLSIM"
AMLSIM_CURRENCY = "US Dollar"
AMLSIM_FORMAT = "Wire"


@dataclass
class LoadedTransactions:
    """Validated transactions, the validation result, and account labels when the data has them."""

    frame: pd.DataFrame
    validation: ValidationResult
    accounts: pd.DataFrame | None = None


def read_ibm_csv(path: Path) -> pd.DataFrame:
    """Raw IBM AMLworld CSV as strings under canonical column names (header checked)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False, header=0,
                       names=ibm_columns(path), engine="pyarrow")


def ibm_columns(path: Path) -> list[str]:
    """The canonical names of an IBM AMLworld CSV's columns (its header checked)."""
    header = pd.read_csv(path, nrows=0).columns
    names = [name.split(".")[0] for name in header]  # pandas renames the 2nd "Account"
    expected = IBM_HEADER[: len(names)]
    if names not in (IBM_HEADER, IBM_HEADER[:-1]):
        raise SchemaError(f"{path}: not an IBM AMLworld transactions CSV; header {names} "
                          f"differs from {expected}")
    return COLUMNS[: len(names)]


#: AMLSim transaction columns: canonical role -> the names AMLSim versions use for it
#: (``tx_log``-style ``sourceNodeId``, the published samples' ``SENDER_ACCOUNT_ID``, the
#: converted logs' ``orig_acct``).
AMLSIM_COLUMNS = {
    "source": ("sourceNodeId", "SENDER_ACCOUNT_ID", "orig_acct"),
    "target": ("targetNodeId", "RECEIVER_ACCOUNT_ID", "bene_acct"),
    "value": ("value", "TX_AMOUNT", "base_amt"),
    "time": ("time", "TIMESTAMP", "tran_timestamp"),
}
AMLSIM_TX_LABELS = ("IS_FRAUD", "is_sar", "isFraud")


def read_amlsim(transactions: Path, accounts: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """IBM AMLSim output as raw canonical transactions plus an account label table.

    ``transactions.csv`` has a sender, receiver, amount and time (integer day steps from
    :data:`AMLSIM_DAY0`, or dates) under any of the names in :data:`AMLSIM_COLUMNS`; the
    accounts file is ``nodes.csv`` (``nodeid,isFraud``) or ``accounts.csv``
    (``ACCOUNT_ID,...,isFraud``). AMLSim labels accounts: a transaction is laundering when the
    file labels it (``IS_FRAUD``), else when both its ends are flagged accounts. AMLSim has no
    banks, currencies or payment formats: one bank, US dollars and wires stand in for them.
    """
    tx = pd.read_csv(transactions)
    found = {role: next((name for name in names if name in tx.columns), None)
             for role, names in AMLSIM_COLUMNS.items()}
    missing = [AMLSIM_COLUMNS[role][0] for role, name in found.items() if name is None]
    if missing:
        raise SchemaError(f"{transactions}: AMLSim transactions lack column(s) {missing} "
                          f"(or their other names: {AMLSIM_COLUMNS})")
    labels = read_amlsim_accounts(accounts)
    flagged = set(labels.loc[labels["is_laundering"] == 1, "account"])
    source = tx[found["source"]].astype(str)
    target = tx[found["target"]].astype(str)
    time = tx[found["time"]]
    steps = pd.to_numeric(time, errors="coerce")
    tx_label = next((name for name in AMLSIM_TX_LABELS if name in tx.columns), None)
    label = (tx[tx_label].astype(str).str.lower().isin({"1", "true"}) if tx_label
             else source.isin(flagged) & target.isin(flagged))
    raw = pd.DataFrame({
        "timestamp": (AMLSIM_DAY0 + pd.to_timedelta(steps, unit="D")).dt.strftime(
            TIMESTAMP_FORMAT).where(steps.notna(), time.astype(str)),
        "from_bank": AMLSIM_BANK,
        "from_account": source,
        "to_bank": AMLSIM_BANK,
        "to_account": target,
        "amount_received": tx[found["value"]],
        "receiving_currency": AMLSIM_CURRENCY,
        "amount_paid": tx[found["value"]],
        "payment_currency": AMLSIM_CURRENCY,
        "payment_format": AMLSIM_FORMAT,
        LABEL: label.astype(np.int8),
    })
    return raw, labels


def write_amlsim(frame: pd.DataFrame, out_dir: Path) -> dict[str, Path]:
    """Canonical labelled transactions as AMLSim output: ``transactions.csv``
    (``tran_id,sourceNodeId,targetNodeId,value,time``: integer node ids, USD amounts, whole-day
    steps from the first day) and ``accounts.csv`` (``ACCOUNT_ID,CUSTOMER_ID,INIT_BALANCE,
    isFraud``: flagged when the account sends or receives a laundering transaction). Banks,
    currencies, payment formats and transaction labels are left out, as AMLSim has none."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keys = pd.concat([frame["from_bank"].astype(str) + "|" + frame["from_account"].astype(str),
                      frame["to_bank"].astype(str) + "|" + frame["to_account"].astype(str)],
                     ignore_index=True)
    ids, uniques = pd.factorize(keys)
    n = len(frame)
    days = frame["timestamp"].to_numpy(dtype="datetime64[D]")
    steps = (days - days.min()).astype(np.int64) if n else np.zeros(0, np.int64)
    value = frame["amount_paid"].to_numpy(dtype=np.float64) * usd_rate(
        frame["payment_currency"], USD_PER_UNIT)
    paths = {"transactions": out / "transactions.csv", "accounts": out / "accounts.csv"}
    pd.DataFrame({"tran_id": np.arange(1, n + 1), "sourceNodeId": ids[:n],
                  "targetNodeId": ids[n:], "value": np.round(value, 2), "time": steps}
                 ).to_csv(paths["transactions"], index=False)
    laundering = frame[LABEL].to_numpy(dtype=bool)
    flagged = np.zeros(len(uniques), dtype=bool)
    flagged[ids[:n][laundering]] = True
    flagged[ids[n:][laundering]] = True
    pd.DataFrame({"ACCOUNT_ID": np.arange(len(uniques)),
                  "CUSTOMER_ID": [f"C{i}" for i in range(len(uniques))],
                  "INIT_BALANCE": 0, "isFraud": flagged}).to_csv(paths["accounts"], index=False)
    return paths


def read_amlsim_accounts(path: Path) -> pd.DataFrame:
    """AMLSim account labels as ``bank, account, is_laundering``."""
    accounts = pd.read_csv(path)
    id_column = next((c for c in ("nodeid", "ACCOUNT_ID", "acct_id") if c in accounts.columns),
                     None)
    label_column = next((c for c in ("isFraud", "IS_FRAUD", "is_sar", "IS_SAR")
                         if c in accounts.columns), None)
    if id_column is None or label_column is None:
        raise SchemaError(f"{path}: AMLSim accounts need an id column (nodeid or ACCOUNT_ID) "
                          f"and a label column (isFraud); found {list(accounts.columns)}")
    label = accounts[label_column].astype(str).str.lower().isin({"1", "true"})
    return pd.DataFrame({"bank": AMLSIM_BANK, "account": accounts[id_column].astype(str),
                         "is_laundering": label.astype(np.int8)})


def canonical_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Rename a frame read with IBM's header (``Account``, ``Account.1``) to canonical names."""
    names = [str(c).split(".")[0] for c in frame.columns]
    if names[: len(IBM_HEADER) - 1] != IBM_HEADER[:-1]:
        return frame
    return frame.set_axis(COLUMNS[: len(frame.columns)], axis=1)


def read_transactions(path: Path, fmt: TransactionFormat = "auto",
                      accounts: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Raw canonical transactions (not yet validated) and AMLSim account labels if any."""
    path = Path(path)
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "amlsim":
        if accounts is None:
            raise SchemaError(f"{path}: AMLSim transactions need --accounts (nodes.csv or "
                              "accounts.csv) for their labels")
        return read_amlsim(path, accounts)
    if fmt == "parquet":
        return canonical_columns(pd.read_parquet(path)), None
    return read_ibm_csv(path), None


def detect_format(path: Path) -> TransactionFormat:
    """``parquet`` by suffix; otherwise IBM or AMLSim from the CSV header."""
    if path.suffix.lower() in {".parquet", ".pq"}:
        return "parquet"
    header = list(pd.read_csv(path, nrows=0).columns)
    sources = AMLSIM_COLUMNS["source"]
    return "amlsim" if any(name in header for name in sources) else "ibm"


def load_transactions(path: Path, fmt: TransactionFormat = "auto", accounts: Path | None = None,
                      strict: bool = False, quarantine: Path | None = None) -> LoadedTransactions:
    """Read, validate and apply the input policy (strict raises; else quarantine bad rows)."""
    raw, labels = read_transactions(path, fmt, accounts)
    result = TRANSACTION_SCHEMA.parse(raw)
    frame = accept(result, strict=strict, quarantine=quarantine)
    return LoadedTransactions(frame=frame, validation=result, accounts=labels)


def to_ibm_table(frame: pd.DataFrame) -> pa.Table:
    """The canonical frame as an Arrow table with IBM's header and text formats."""
    columns = [c for c in COLUMNS if c in frame.columns]
    arrays = []
    for column in columns:
        values = frame[column]
        if column == "timestamp":
            stamps = pa.array(values.to_numpy(dtype="datetime64[s]"))
            arrays.append(pc.strftime(stamps, format=TIMESTAMP_FORMAT))
        elif column in {"amount_received", "amount_paid"}:
            arrays.append(pa.array(values.to_numpy(dtype=np.float64)))
        elif column == LABEL:
            arrays.append(pa.array(values.to_numpy(dtype=np.int64)))
        else:
            arrays.append(pa.array(values.astype(str).to_numpy(dtype=object), type=pa.string()))
    header = [IBM_HEADER[COLUMNS.index(c)] for c in columns]
    return pa.Table.from_arrays(arrays, names=header)


def write_ibm_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write canonical transactions as an IBM AMLworld CSV (repeated ``Account`` header).

    Values are written unquoted, as IBM does; a value containing a comma is refused.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    options = pacsv.WriteOptions(quoting_style="none", include_header=False)
    with path.open("wb") as sink:
        sink.write((",".join(to_ibm_table(frame.head(0)).column_names) + "\n").encode())
        pacsv.write_csv(to_ibm_table(frame), sink, write_options=options)
    return path


def format_ibm_lines(frame: pd.DataFrame) -> list[str]:
    """IBM CSV row text (no header) for each transaction, as used in ``patterns.txt``."""
    sink = pa.BufferOutputStream()
    options = pacsv.WriteOptions(quoting_style="none", include_header=False)
    pacsv.write_csv(to_ibm_table(frame), sink, write_options=options)
    return sink.getvalue().to_pybytes().decode().splitlines()
