"""Canonical JSON of a record: what the audit log hashes and the history store keeps."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import numpy as np
import pandas as pd


def plain(value: Any) -> Any:
    """A JSON-safe Python value: timestamps as ISO text, NaN/NA as None, numpy as Python."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | np.datetime64):
        return pd.Timestamp(value).isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def record_dicts(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a canonical frame as plain dicts (column order kept)."""
    columns = list(frame.columns)
    return [{c: plain(v) for c, v in zip(columns, row, strict=True)}
            for row in frame.itertuples(index=False, name=None)]


def canonical_json(record: dict[str, Any]) -> str:
    """Sorted keys, no whitespace: the same record always gives the same text."""
    return json.dumps({k: plain(v) for k, v in record.items()}, sort_keys=True,
                      separators=(",", ":"), allow_nan=False)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
