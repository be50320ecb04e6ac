"""Suspected networks: connected groups of flagged transactions, with a typology guess."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd

FAMILY_TYPOLOGY = {
    "fan-in": "FAN-IN", "fan-out": "FAN-OUT", "layering cycle": "CYCLE",
    "scatter-gather": "SCATTER-GATHER", "gather-scatter": "GATHER-SCATTER",
    "structuring": "STRUCTURING", "rapid movement / pass-through": "PASS-THROUGH",
    "layering (stack / bipartite)": "STACK / BIPARTITE",
}


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


def suspected_networks(flagged: pd.DataFrame, in_request: set[str]) -> list[dict[str, Any]]:
    """Groups of flagged edges (``sender``, ``receiver``, ``time``, ``amount_usd``, ``id``,
    ``families``) connected through shared accounts; only groups touching the request."""
    if flagged.empty:
        return []
    sets = _UnionFind()
    for sender, receiver in zip(flagged["sender"], flagged["receiver"], strict=True):
        sets.union(sender, receiver)
    roots = flagged["sender"].map(sets.find)
    networks = []
    for _, group in flagged.groupby(roots.to_numpy(), sort=False):
        ids = set(group["id"])
        if not ids & in_request:
            continue
        accounts = sorted(set(group["sender"]) | set(group["receiver"]))
        families = Counter(f for fams in group["families"] for f in fams)
        networks.append({
            "accounts": accounts,
            "transactions": sorted(ids),
            "total_amount_usd": float(group["amount_usd"].sum()),
            "first_time": pd.Timestamp(group["time"].min()).isoformat(),
            "last_time": pd.Timestamp(group["time"].max()).isoformat(),
            "typology_guess": _guess(group, families),
        })
    return sorted(networks, key=lambda n: -n["total_amount_usd"])


def _guess(group: pd.DataFrame, families: Counter) -> str:
    """The typology a group looks like: a closed loop is a cycle; else the dominant family."""
    senders, receivers = set(group["sender"]), set(group["receiver"])
    if len(group) >= 2 and senders == receivers:
        return "CYCLE"
    for family, _ in families.most_common():
        if family in FAMILY_TYPOLOGY:
            return FAMILY_TYPOLOGY[family]
    return "RANDOM"
