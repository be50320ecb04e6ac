"""Analysts' dispositions as training labels: export them in a detector's training format, and
apply such a file to loaded training data (a disposition overrides the label of the same
record, or adds the record).

Confirmed = 1, dismissed = 0; escalated decisions are still open and give no label. A
decision's latest disposition counts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from illicitflows.audit.dispositions import LABELS, DispositionLog
from illicitflows.audit.store import AuditLog
from illicitflows.trade import schema as trade_schema
from illicitflows.trade.io import load_declarations, write_declarations
from illicitflows.transactions import schema as tx_schema
from illicitflows.transactions.io import load_transactions, write_ibm_csv
from illicitflows.validation import accept

LABEL_COLUMN = {"transactions": tx_schema.LABEL, "trade": trade_schema.LABEL}


@dataclass(frozen=True, slots=True)
class AnalystLabels:
    """How many labels of a training run came from analysts."""

    file_rows: int
    overridden: int
    changed: int
    added: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def labelled_records(audit: AuditLog, dispositions: DispositionLog,
                     detector: str) -> pd.DataFrame:
    """The records of ``detector``'s decisions whose latest disposition gives a label, as
    validated canonical rows with the label column (in the order they were dispositioned)."""
    if detector not in LABEL_COLUMN:
        raise ValueError(f"detector must be one of {sorted(LABEL_COLUMN)}, got {detector!r}")
    rows = []
    for disposition in dispositions.all_latest(detector):
        if disposition.status not in LABELS:
            continue
        stored = audit.get(disposition.decision_id)
        if stored is None:  # verify names this; an export must not invent a record
            raise LookupError(f"disposition {disposition.disposition_id} is of decision "
                              f"{disposition.decision_id}, which is not in the audit log")
        rows.append({**stored.record, LABEL_COLUMN[detector]: LABELS[disposition.status]})
    schema = (tx_schema.TRANSACTION_SCHEMA if detector == "transactions"
              else trade_schema.DECLARATION_SCHEMA)
    columns = tx_schema.COLUMNS if detector == "transactions" else trade_schema.COLUMNS
    raw = pd.DataFrame(rows) if rows else pd.DataFrame({c: pd.Series(dtype=object)
                                                        for c in columns})
    return accept(schema.parse(raw), strict=True)


def export_labels(audit: AuditLog, dispositions: DispositionLog, detector: str,
                  out: Path) -> int:
    """Write the labelled records of ``detector`` to ``out`` in its training format (IBM CSV
    for transactions, canonical CSV or Parquet for declarations); returns how many."""
    frame = labelled_records(audit, dispositions, detector)
    if detector == "transactions":
        write_ibm_csv(frame, out)
    else:
        write_declarations(frame, out)
    return len(frame)


def apply_analyst_labels(frame: pd.DataFrame, labels_path: Path | None,
                         detector: str) -> tuple[pd.DataFrame, AnalystLabels | None]:
    """``frame`` with the labels of an exported labels file: the label of each record found in
    ``frame`` (declarations by id, transactions by every field) is replaced, records not
    found are appended; the counts say how many."""
    if labels_path is None:
        return frame, None
    label = LABEL_COLUMN[detector]
    if detector == "transactions":
        labels = load_transactions(labels_path, "ibm", strict=True).frame
        keys = [c for c in tx_schema.COLUMNS if c != label]
    else:
        labels, _ = load_declarations(labels_path, "canonical", strict=True)
        keys = [trade_schema.ID]
    missing = [c for c in keys if c not in frame.columns or c not in labels.columns]
    if missing:
        raise ValueError(f"{labels_path}: cannot match records to the training data on "
                         f"{missing}")
    labels = labels.drop_duplicates(keys, keep="last")
    given = labels[label].to_numpy(dtype=np.int8)
    index = pd.MultiIndex.from_frame(frame[keys].astype(str))
    found = pd.MultiIndex.from_frame(labels[keys].astype(str))
    where = index.get_indexer(found) if index.is_unique else _first_positions(index, found)
    hit = where >= 0
    out = frame.copy()
    before = out[label].to_numpy(dtype=np.int8)[where[hit]]
    column = out.columns.get_loc(label)
    out.iloc[where[hit], column] = given[hit]
    added = labels[~hit]
    if len(added):
        out = pd.concat([out, added[[c for c in out.columns if c in added.columns]]],
                        ignore_index=True)
    counts = AnalystLabels(file_rows=len(labels), overridden=int(hit.sum()),
                           changed=int((before != given[hit]).sum()), added=int(len(added)))
    return out, counts


def _first_positions(index: pd.MultiIndex, found: pd.MultiIndex) -> np.ndarray:
    """The position of each of ``found`` in a non-unique ``index`` (its first), or -1."""
    first = pd.Series(np.arange(len(index)), index=index)
    first = first[~first.index.duplicated()]
    return first.reindex(found).fillna(-1).to_numpy(dtype=np.int64)
