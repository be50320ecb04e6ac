"""Suspected networks: connected groups of flagged transactions, with a typology guess."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
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


class Edge(NamedTuple):
    """A flagged transaction between two accounts (``bank|account``)."""

    id: str
    sender: str
    receiver: str
    time: pd.Timestamp
    amount_usd: float
    families: list[str]


def suspected_networks(edges: Sequence[Edge], in_request: set[str]) -> list[dict[str, Any]]:
    """Groups of flagged edges connected through shared accounts; only groups touching the
    request. Plain Python (edges are few; grouping them with pandas cost a millisecond)."""
    sets = _UnionFind()
    for edge in edges:
        sets.union(edge.sender, edge.receiver)
    groups: dict[str, list[Edge]] = {}
    for edge in edges:
        groups.setdefault(sets.find(edge.sender), []).append(edge)
    networks = [_network(group) for group in groups.values()
                if any(edge.id in in_request for edge in group)]
    return sorted(networks, key=lambda n: -n["total_amount_usd"])


def _network(group: list[Edge]) -> dict[str, Any]:
    """One group's accounts, transactions, total (numpy's sum, as pandas sums), time span and
    typology guess."""
    times = [edge.time for edge in group]
    return {
        "accounts": sorted({edge.sender for edge in group} | {edge.receiver for edge in group}),
        "transactions": sorted({edge.id for edge in group}),
        "total_amount_usd": float(np.nansum([edge.amount_usd for edge in group])),
        "first_time": pd.Timestamp(min(times)).isoformat(),
        "last_time": pd.Timestamp(max(times)).isoformat(),
        "typology_guess": _guess(group),
    }


def _guess(group: list[Edge]) -> str:
    """The typology a group looks like: a closed loop is a cycle; else the dominant family."""
    senders, receivers = {edge.sender for edge in group}, {edge.receiver for edge in group}
    if len(group) >= 2 and senders == receivers:
        return "CYCLE"
    families = Counter(family for edge in group for family in edge.families)
    for family, _ in families.most_common():
        if family in FAMILY_TYPOLOGY:
            return FAMILY_TYPOLOGY[family]
    return "RANDOM"
