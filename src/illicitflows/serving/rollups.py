"""Roll-ups of a scored batch: per account (transactions) or per importer (trade)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

TOP_FAMILIES = 3


@dataclass
class _Tally:
    rows: set[int] = field(default_factory=set)
    max_score: float = float("-inf")
    total: float = 0.0
    flagged: int = 0
    families: Counter = field(default_factory=Counter)


def roll_up(keys: list[list[str]], scores: list[float], flagged: list[bool],
            reasons: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One entry per key seen (``keys[i]`` are record i's keys, e.g. sender and receiver; a
    record counts once per key): max and mean score, flagged count, frequent red-flag families.
    Plain Python: batches are at most a few thousand records and this runs on every request."""
    tallies: dict[str, _Tally] = {}
    for row, row_keys in enumerate(keys):
        for key in set(row_keys):
            tally = tallies.setdefault(key, _Tally())
            tally.rows.add(row)
            tally.max_score = max(tally.max_score, scores[row])
            tally.total += scores[row]
            if flagged[row]:
                tally.flagged += 1
                tally.families.update(r["family"] for r in reasons[row])
    out = [{"key": key, "records": len(t.rows), "max_score": t.max_score,
            "mean_score": t.total / len(t.rows), "flagged": t.flagged,
            "top_reasons": [f for f, _ in t.families.most_common(TOP_FAMILIES)]}
           for key, t in tallies.items()]
    return sorted(out, key=lambda item: (-item["max_score"], item["key"]))
