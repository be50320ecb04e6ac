"""Suspected networks from the incremental flagged-edge graph are the groups a from-scratch
union-find over every flagged edge within the horizon finds, request after request."""

from __future__ import annotations

import random
from typing import Any

import pandas as pd

from illicitflows.serving.networks import Edge, FlaggedGraph, _network

HORIZON = pd.Timedelta(hours=6)
FAMILIES = ["fan-in", "fan-out", "structuring", "layering cycle", "unknown"]


def from_scratch(edges: list[Edge], in_request: set[str]) -> list[dict[str, Any]]:
    """The reference: union-find over every edge, groups in the order of their first edge,
    those holding a request edge, largest total first."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            x = parent[x]
        return x

    for edge in edges:
        parent[find(edge.sender)] = find(edge.receiver)
    groups: dict[str, list[Edge]] = {}
    for edge in edges:
        groups.setdefault(find(edge.sender), []).append(edge)
    return sorted((_network(group) for group in groups.values()
                   if any(edge.id in in_request for edge in group)),
                  key=lambda n: -n["total_amount_usd"])


def test_incremental_networks_match_a_union_find_over_the_horizon() -> None:
    rng = random.Random(11)
    graph, kept = FlaggedGraph(HORIZON), []
    now, counter = pd.Timestamp("2022-09-01"), 0
    for _ in range(80):  # requests in time order (no row before an earlier request's last)
        now = max([now, *(edge.time for edge in kept)]) + pd.Timedelta(minutes=rng.randint(0, 40))
        edges, span = [], 30 if rng.random() > 0.15 else 8 * 60  # some outlast the horizon
        for _ in range(rng.randint(0, 6)):
            counter += 1
            accounts = [f"b|a{rng.randint(0, 80)}" for _ in range(2)]
            if rng.random() < 0.1:
                accounts[1] = accounts[0]  # a self-transfer
            edges.append(Edge(f"r{counter}", accounts[0], accounts[1],
                              now + pd.Timedelta(minutes=rng.randint(0, span)),
                              rng.choice([100.0, 250.0]), rng.sample(FAMILIES, 2)))  # ties
        graph.add(edges)
        kept += edges
        start = max(edge.time for edge in kept) - HORIZON if kept else None
        kept = [edge for edge in kept if edge.time >= start]
        assert graph.edges == kept
        if edges:
            assert graph.networks(edges) == from_scratch(kept, {e.id for e in edges})
