"""Roll-ups of a scored batch: per account (transactions) or per importer (trade)."""

from __future__ import annotations

from collections import Counter
from typing import Any

TOP_FAMILIES = 3


def roll_up(keys: list[list[str]], scores: list[float], flagged: list[bool],
            reasons: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One entry per key seen (``keys[i]`` are record i's keys, e.g. sender and receiver; a
    record counts once per key): max and mean score, flagged count, frequent red-flag families.
    Plain Python: batches are at most a few thousand records and this runs on every request."""
    rows: dict[str, list[int]] = {}
    for row, row_keys in enumerate(keys):
        for key in dict.fromkeys(row_keys):
            rows.setdefault(key, []).append(row)
    out = [_entry(key, found, scores, flagged, reasons) for key, found in rows.items()]
    return sorted(out, key=lambda item: (-item["max_score"], item["key"]))


def _entry(key: str, rows: list[int], scores: list[float], flagged: list[bool],
           reasons: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """The roll-up of one key over its records ``rows`` (red-flag families counted only for
    keys with a flagged record: most keys have none)."""
    values = [scores[row] for row in rows]
    hits = [row for row in rows if flagged[row]]
    top = ([f for f, _ in Counter(r["family"] for row in hits for r in reasons[row])
            .most_common(TOP_FAMILIES)] if hits else [])
    return {"key": key, "records": len(rows), "max_score": max(values),
            "mean_score": sum(values) / len(rows), "flagged": len(hits), "top_reasons": top}
