"""The GFP peer baseline on a handmade frame: shape, order, a fan-in hub, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("snapml", reason="snapml (optional dependency 'illicitflows[gfp]') is not "
                    "installed, so IBM's Graph Feature Preprocessor cannot run")

from illicitflows.modeling.gfp import (  # noqa: E402
    GFP_BENCHMARK_PARAMS,
    RAW_FEATURES,
    SOURCE,
    TARGET,
    TIMESTAMP,
    GraphFeaturePeer,
    edge_list,
)

HUB = ("001", "HUB")
LEAVES = [("002", f"L{i}") for i in range(5)]
#: GFP columns: 12 pattern bins, then vertex statistics as source-out, source-in, dest-out,
#: dest-in blocks of 13 (fan, degree, ratio, then 5 statistics for each of 2 columns).
DEST_FAN_IN = "gfp_51"


def expected_gfp_columns(params: dict) -> int:
    """GFP's engineered column count, from the layout in snapml's ``transform`` docstring."""
    patterns = 2 * len(params["fan_bins"]) + 2 * len(params["degree_bins"])
    patterns += len(params["scatter-gather_bins"]) + len(params["temp-cycle_bins"])
    patterns += len(params["lc-cycle_bins"]) if params["lc-cycle"] else 0
    feats = params["vertex_stats_feats"]
    per_block = sum(f < 3 for f in feats) + len(params["vertex_stats_cols"]) * sum(
        f >= 3 for f in feats)
    return patterns + 4 * per_block


def payment(minute: int, sender: tuple[str, str], receiver: tuple[str, str],
            amount: float) -> dict:
    return {"timestamp": pd.Timestamp("2022-09-01 10:00") + pd.Timedelta(minutes=minute),
            "from_bank": sender[0], "from_account": sender[1], "to_bank": receiver[0],
            "to_account": receiver[1], "amount_received": amount, "receiving_currency": "Euro",
            "amount_paid": amount, "payment_currency": "Euro", "payment_format": "ACH",
            "is_laundering": 0}


@pytest.fixture
def frame() -> pd.DataFrame:
    """Five leaves pay a hub, the hub pays on, two leaves pay each other; rows shuffled."""
    rows = [payment(10 * i, leaf, HUB, 900.0 + i) for i, leaf in enumerate(LEAVES)]
    rows += [payment(60, HUB, ("003", "OUT"), 4000.0),
             payment(70, ("004", "A"), ("004", "B"), 50.0)]
    ordered = pd.DataFrame(rows).astype({c: "str" for c in ("from_bank", "from_account",
                                                             "to_bank", "to_account")})
    ordered.index = pd.RangeIndex(100, 100 + len(ordered))
    return ordered.sample(frac=1.0, random_state=3)


def test_one_row_per_transaction_in_input_order(frame: pd.DataFrame) -> None:
    features = GraphFeaturePeer().build(frame)
    assert features.index.equals(frame.index)
    np.testing.assert_array_equal(features["amount_paid"], frame["amount_paid"])


def test_columns_are_raw_then_gfp_all_numeric(frame: pd.DataFrame) -> None:
    features = GraphFeaturePeer().build(frame)
    n_gfp = expected_gfp_columns(GFP_BENCHMARK_PARAMS)
    assert list(features.columns) == [*RAW_FEATURES, *(f"gfp_{i}" for i in range(n_gfp))]
    assert all(pd.api.types.is_numeric_dtype(features[c]) for c in features.columns)


def test_fan_in_hub_scores_above_a_leaf(frame: pd.DataFrame) -> None:
    features = GraphFeaturePeer().build(frame)
    into_hub = frame["to_account"] == HUB[1]
    into_leaf = frame["to_account"] == "B"
    assert features.loc[into_hub, DEST_FAN_IN].min() == len(LEAVES)
    assert features.loc[into_hub, DEST_FAN_IN].min() > features.loc[into_leaf, DEST_FAN_IN].max()


def test_deterministic(frame: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(GraphFeaturePeer().build(frame), GraphFeaturePeer().build(frame))


def test_features_do_not_depend_on_row_order(frame: pd.DataFrame) -> None:
    shuffled = GraphFeaturePeer().build(frame)
    ordered = GraphFeaturePeer().build(frame.sort_index())
    pd.testing.assert_frame_equal(shuffled.sort_index(), ordered)


def test_edge_list_shares_account_ids_and_starts_time_at_zero(frame: pd.DataFrame) -> None:
    edges = edge_list(frame, frame["amount_paid"].to_numpy())
    hub_in = edges[(frame["to_account"] == HUB[1]).to_numpy(), TARGET]
    hub_out = edges[(frame["from_account"] == HUB[1]).to_numpy(), SOURCE]
    assert len(set(hub_in) | set(hub_out)) == 1
    assert edges[:, TIMESTAMP].min() == 0


def test_batch_output_sees_later_transactions(frame: pd.DataFrame) -> None:
    """IBM's one-batch protocol is not causal: the first payment into the hub already counts
    the four senders that pay it later."""
    features = GraphFeaturePeer().build(frame)
    first = frame.loc[frame["to_account"] == HUB[1], "timestamp"].idxmin()
    assert features.loc[first, DEST_FAN_IN] == len(LEAVES)
