"""Roll-ups of a scored batch: per account (transactions) or per importer (trade)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

TOP_FAMILIES = 3


def roll_up(keys: Sequence[Sequence[str]], scores: list[float], flagged: list[bool],
            reasons: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One entry per key seen (``keys[i]`` are record i's keys, e.g. sender and receiver; a
    record counts once per key): max and mean score, flagged count, frequent red-flag families.
    Plain Python in two passes, every record's scores then the few flagged records' families:
    batches are at most a few thousand records and this runs on every request."""
    found: dict[str, list[float]] = {}
    for row_keys, score in zip(keys, scores, strict=True):
        for key in dict.fromkeys(row_keys):
            found.setdefault(key, []).append(score)
    hits: dict[str, list[int]] = {}
    for row, hit in enumerate(flagged):
        if hit:
            for key in dict.fromkeys(keys[row]):
                hits.setdefault(key, []).append(row)
    order = sorted((-max(values), key) for key, values in found.items())
    return [_entry(key, -negative_max, found[key], hits.get(key, []), reasons)
            for negative_max, key in order]


def _entry(key: str, max_score: float, scores: list[float], hits: list[int],
           reasons: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """The roll-up of one key over its records' ``scores`` and flagged records ``hits``."""
    top = ([f for f, _ in Counter(r["family"] for row in hits for r in reasons[row])
            .most_common(TOP_FAMILIES)] if hits else [])
    return {"key": key, "records": len(scores), "max_score": max_score,
            "mean_score": sum(scores) / len(scores), "flagged": len(hits), "top_reasons": top}
