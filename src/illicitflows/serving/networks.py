"""Suspected networks: connected groups of flagged transactions, with a typology guess."""

from __future__ import annotations

from collections import Counter, deque
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

FAMILY_TYPOLOGY = {
    "fan-in": "FAN-IN", "fan-out": "FAN-OUT", "layering cycle": "CYCLE",
    "scatter-gather": "SCATTER-GATHER", "gather-scatter": "GATHER-SCATTER",
    "structuring": "STRUCTURING", "rapid movement / pass-through": "PASS-THROUGH",
    "layering (stack / bipartite)": "STACK / BIPARTITE",
}


class Edge(NamedTuple):
    """A flagged transaction between two accounts (``bank|account``)."""

    id: str
    sender: str
    receiver: str
    time: pd.Timestamp
    amount_usd: float
    families: list[str]


class FlaggedGraph:
    """The flagged edges within the horizon, indexed by account, so that a request's networks
    cost what the groups it touches hold, not every flagged edge the horizon keeps (rebuilt
    from all of them, 10,000 edges cost 10 to 20 ms a request).

    Records arrive in time order across requests (later ones are refused), so edges leave
    the horizon from the front; within a group, edges keep the order they were added in."""

    def __init__(self, horizon: pd.Timedelta) -> None:
        self.horizon = horizon
        self._edges: deque[tuple[int, Edge]] = deque()  # by time, then order added
        self._by_account: dict[str, deque[tuple[int, Edge]]] = {}
        self._added = 0

    @property
    def edges(self) -> list[Edge]:
        """The edges within the horizon, in the order they were added."""
        return [edge for _, edge in sorted(self._edges, key=itemgetter(0))]

    def add(self, edges: list[Edge]) -> None:
        """Add a request's flagged edges, then drop those older than the horizon before the
        latest edge."""
        numbered = enumerate(edges, start=self._added)
        self._added += len(edges)
        for item in sorted(numbered, key=lambda item: item[1].time):
            self._edges.append(item)
            for account in dict.fromkeys((item[1].sender, item[1].receiver)):
                self._by_account.setdefault(account, deque()).append(item)
        if self._edges:
            self._drop_before(self._edges[-1][1].time - self.horizon)

    def _drop_before(self, start: pd.Timestamp) -> None:
        while self._edges and self._edges[0][1].time < start:
            _, edge = self._edges.popleft()
            for account in dict.fromkeys((edge.sender, edge.receiver)):
                kept = self._by_account[account]
                kept.popleft()
                if not kept:
                    del self._by_account[account]

    def networks(self, seeds: list[Edge]) -> list[dict[str, Any]]:
        """The groups of edges connected through shared accounts that hold one of the
        request's edges (``seeds``, added last), largest total first. A seed the horizon has
        dropped leaves its sender only edges of the same request (all earlier ones are older),
        so every group found holds a request edge."""
        seen: set[str] = set()
        groups: list[dict[int, Edge]] = []
        for seed in seeds:
            if seed.sender in seen:
                continue
            group: dict[int, Edge] = {}
            stack = [seed.sender]
            seen.add(seed.sender)
            while stack:
                for number, edge in self._by_account.get(stack.pop(), ()):
                    group[number] = edge
                    for account in (edge.sender, edge.receiver):
                        if account not in seen:
                            seen.add(account)
                            stack.append(account)
            if group:
                groups.append(group)
        groups.sort(key=min)  # in the order their first edge was added
        return sorted((_network([group[n] for n in sorted(group)]) for group in groups),
                      key=lambda n: -n["total_amount_usd"])


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
