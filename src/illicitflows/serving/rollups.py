"""Roll-ups of a scored batch: per account (transactions) or per importer (trade)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd

TOP_FAMILIES = 3


def roll_up(keys: pd.DataFrame, scores: pd.Series, flagged: pd.Series,
            reasons: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One entry per key seen (a record counts for every key column it has, e.g. sender and
    receiver): max and mean score, flagged count, most frequent red-flag families."""
    long = pd.concat([pd.DataFrame({"key": keys[c].to_numpy(), "row": range(len(keys))})
                      for c in keys.columns], ignore_index=True).drop_duplicates()
    long["score"] = scores.to_numpy()[long["row"]]
    long["flagged"] = flagged.to_numpy()[long["row"]]
    out = []
    for key, group in long.groupby("key", sort=True):
        families = Counter(r["family"] for row in group["row"] for r in reasons[row]
                           if flagged.iloc[row])
        out.append({"key": key, "records": int(len(group)),
                    "max_score": float(group["score"].max()),
                    "mean_score": float(group["score"].mean()),
                    "flagged": int(group["flagged"].sum()),
                    "top_reasons": [f for f, _ in families.most_common(TOP_FAMILIES)]})
    return sorted(out, key=lambda item: (-item["max_score"], str(item["key"])))
