"""IBM AMLworld ``patterns.txt``: laundering attempts as blocks of transaction rows.

Each attempt is written as::

    BEGIN LAUNDERING ATTEMPT - FAN-IN
    2022/09/01 00:20,010,8000EBD30,...,ACH,1
    END LAUNDERING ATTEMPT - FAN-IN

IBM adds details after the name in some headers (``FAN-OUT:  Max 16-degree Fan-Out``,
``CYCLE:  Max 12 hops``); the reader accepts and drops them.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd

from illicitflows.transactions.io import format_ibm_lines
from illicitflows.transactions.schema import COLUMNS, TIMESTAMP_FORMAT

BEGIN = "BEGIN LAUNDERING ATTEMPT - "
END = "END LAUNDERING ATTEMPT - "
_HEADER = re.compile(r"^(BEGIN|END) LAUNDERING ATTEMPT - ([^:]+?)\s*(?::.*)?$")
#: Columns that identify a transaction when matching patterns to transactions.
MATCH_KEYS = ["timestamp", "from_bank", "from_account", "to_bank", "to_account", "amount_paid",
              "payment_currency", "amount_received", "receiving_currency", "payment_format"]
_TEXT_COLUMNS = ["from_bank", "from_account", "to_bank", "to_account", "receiving_currency",
                 "payment_currency", "payment_format"]


def write_patterns(frame: pd.DataFrame, path: Path) -> Path:
    """Write the attempts of a frame with ``typology`` and ``attempt_id`` columns.

    Attempts come in ``attempt_id`` order, their rows in frame order, a blank line between.
    """
    rows = frame[frame["attempt_id"] >= 0]
    rows = rows.iloc[rows["attempt_id"].to_numpy().argsort(kind="stable")]
    lines = format_ibm_lines(rows[COLUMNS])
    blocks, at = [], 0
    for (_, typology), size in rows.groupby(["attempt_id", "typology"], sort=True).size().items():
        blocks.append("\n".join([BEGIN + typology, *lines[at:at + size], END + typology]))
        at += size
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(blocks) + ("\n" if blocks else ""))
    return path


def read_patterns(path: Path) -> pd.DataFrame:
    """Typed transaction rows of each attempt plus ``typology`` and ``attempt_id`` (0, 1, ...
    in file order)."""
    rows: list[str] = []
    typology: list[str] = []
    attempt: list[int] = []
    current: str | None = None
    blocks = 0
    for raw in Path(path).read_text().splitlines():
        line = raw.strip()
        header = _HEADER.match(line)
        if header and header.group(1) == "BEGIN":
            current, blocks = header.group(2), blocks + 1
        elif header:
            current = None
        elif line and current is not None:
            rows.append(line)
            typology.append(current)
            attempt.append(blocks - 1)
    frame = _parse_rows(rows)
    frame["typology"] = pd.array(typology, dtype="str")
    frame["attempt_id"] = pd.array(attempt, dtype="int64")
    return frame


def _parse_rows(rows: list[str]) -> pd.DataFrame:
    """IBM CSV row text as a typed canonical frame (bank and account ids stay text)."""
    frame = pd.read_csv(io.StringIO("\n".join(rows)), header=None, names=COLUMNS,
                        dtype=dict.fromkeys(_TEXT_COLUMNS, "str"), keep_default_na=False)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], format=TIMESTAMP_FORMAT)
    frame[["amount_received", "amount_paid"]] = frame[
        ["amount_received", "amount_paid"]].astype("float64")
    frame["is_laundering"] = frame["is_laundering"].astype("int8")
    return frame


def label_typologies(transactions: pd.DataFrame, patterns: pd.DataFrame) -> pd.Series:
    """Typology of each transaction ("" when it is in no attempt), matched exactly on
    :data:`MATCH_KEYS`; a transaction matching several pattern rows takes the first."""
    lookup = patterns[[*MATCH_KEYS, "typology"]].drop_duplicates(MATCH_KEYS, keep="first")
    matched = transactions[MATCH_KEYS].merge(lookup, on=MATCH_KEYS, how="left")
    return pd.Series(matched["typology"].fillna("").to_numpy(), index=transactions.index,
                     name="typology", dtype="str")
