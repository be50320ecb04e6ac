"""The account review's table and ranker: own scores, one- and two-hop propagation over the
period's transfers, and a ranker that survives a save and load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from illicitflows.modeling.accounts import (
    ACCOUNT_FEATURES,
    AccountRanker,
    PeriodTransfers,
    account_table,
)


def period(rows: list[tuple[str, str, float]]) -> PeriodTransfers:
    """Transfers (sender, receiver, score), 100 USD each, one a day."""
    n = len(rows)
    return PeriodTransfers(np.array([s for s, _, _ in rows], dtype=object),
                           np.array([r for _, r, _ in rows], dtype=object),
                           np.array([x for *_, x in rows]), np.full(n, 100.0),
                           np.arange(n) * 86_400)


def test_scores_propagate_one_and_two_hops() -> None:
    # A -> B is risky; C pays B (one hop from A's risk), D pays C (two hops).
    table = account_table(period([("A", "B", 0.9), ("C", "B", 0.1), ("D", "C", 0.05),
                                  ("E", "F", 0.02)]), threshold=0.5)
    assert list(table.columns) == list(ACCOUNT_FEATURES)
    assert table.loc["B", "own_score_max"] == pytest.approx(0.9)
    assert table.loc["B", "own_alerts"] == 1 and table.loc["C", "own_alerts"] == 0
    assert table.loc["C", "hop1_score_max"] == pytest.approx(0.9)  # its counterparty B
    assert table.loc["D", "hop1_score_max"] == pytest.approx(0.1)
    assert table.loc["D", "hop2_score_max"] > table.loc["E", "hop2_score_max"]
    assert table.loc["A", "own_flow_balance"] == pytest.approx(1.0)  # only sends
    assert table.loc["B", "own_counterparties"] == 2
    assert table.loc["B", "own_score_top3"] == pytest.approx(0.5)


def test_the_ranker_learns_from_neighbours_and_loads_back() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(400):
        bad = i < 40
        for j in range(4):
            other = f"X{rng.integers(0, 40)}" if bad else f"N{rng.integers(0, 400)}"
            rows.append((f"A{i}", other, rng.uniform(0.3, 0.9) if bad and j == 0
                         else rng.uniform(0, 0.3)))
    table = account_table(period(rows), threshold=0.5)
    labels = table.index.str.match(r"A\d$|A[0-3]\d$").astype(int)
    ranker = AccountRanker.fit(table, labels)
    loaded = AccountRanker.from_text(ranker.to_text())
    np.testing.assert_allclose(loaded.score(table), ranker.score(table))
    assert loaded.threshold == ranker.threshold
    score = pd.Series(ranker.score(table), index=table.index)
    assert score[labels == 1].mean() > score[labels == 0].mean() + 0.3
    with pytest.raises(ValueError, match="flagged and unflagged"):
        AccountRanker.fit(table, np.zeros(len(table)))
