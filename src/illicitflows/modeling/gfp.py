"""Peer baseline: IBM's Graph Feature Preprocessor (snapml ``GraphFeaturePreprocessor``, GFP).

GFP mines graph patterns (fan in/out, degree in/out, scatter-gather, temporal cycles) and vertex
statistics for every transaction; LightGBM is then trained on its output plus a few raw
columns, as in IBM's anti-money-laundering baseline. snapml is an optional dependency
(``illicitflows[gfp]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from illicitflows.transactions.features.catalog import CURRENCY_CODES, PAYMENT_FORMAT_CODES
from illicitflows.transactions.schema import ISO_CODE, USD_PER_UNIT, usd_rate

HOUR = 3600
DAY = 24 * HOUR
#: Columns of the edge list GFP reads: id, source, target, timestamp, then extra raw features.
EDGE_ID, SOURCE, TARGET, TIMESTAMP, AMOUNT = range(5)
N_EDGE_COLUMNS = 5

# IBM's AML settings. Pattern switches, bins ([y + 2 for y in range(2)] = [2, 3]),
# vertex_stats_feats and the disabled long cycles ("lc-cycle" False, length 8) follow
# IBM/snapml-examples, examples/graph_feature_preprocessor/graph_feature_preprocessor.ipynb
# ("Graph Features Extraction for Anti-Money Laundering"); that notebook runs a 16-second toy
# window, so the windows here are IBM's AML benchmark ones (Blanusa et al., "Graph Feature
# Preprocessor", arXiv:2402.08593): one day, and six hours for scatter-gather. Vertex statistics
# read the timestamp and the USD amount (columns 3 and 4 of the edge list).
GFP_BENCHMARK_PARAMS: dict[str, Any] = {
    "num_threads": 2,
    "time_window": DAY,
    "vertex_stats": True,
    "vertex_stats_cols": [TIMESTAMP, AMOUNT],
    # 0 fan, 1 degree, 2 ratio, 3 avg, 4 sum, 8 var, 9 skew, 10 kurtosis
    "vertex_stats_feats": [0, 1, 2, 3, 4, 8, 9, 10],
    "fan": True,
    "fan_tw": DAY,
    "fan_bins": [2, 3],
    "degree": True,
    "degree_tw": DAY,
    "degree_bins": [2, 3],
    "scatter-gather": True,
    "scatter-gather_tw": 6 * HOUR,
    "scatter-gather_bins": [2, 3],
    "temp-cycle": True,
    "temp-cycle_tw": DAY,
    "temp-cycle_bins": [2, 3],
    "lc-cycle": False,
    "lc-cycle_tw": DAY,
    "lc-cycle_len": 8,
    "lc-cycle_bins": [2, 3],
}

#: Raw columns fed to LightGBM next to GFP's, after IBM's formatted AML transactions
#: (IBM/Multi-GNN, format_kaggle_files.py: amounts, currencies and payment format as integer
#: codes) plus the USD amount GFP sees and the hour and weekday of the timestamp.
RAW_FEATURES = ("amount_paid", "payment_currency", "amount_received", "receiving_currency",
                "payment_format", "amount_usd", "hour", "weekday")
CATEGORICAL_FEATURES = ("payment_currency", "receiving_currency", "payment_format")
CURRENCY_NAMES = {code: name for name, code in ISO_CODE.items()}


class GraphFeaturePeer:
    """GFP features of payment transactions, one row per transaction in input order.

    The graph: vertices are accounts (``bank|account``, numbered in order of first appearance,
    senders first), edges are transactions (edge id = row position in the frame), timestamps are
    seconds since the frame's earliest one, and the amount is ``amount_paid`` in USD
    (:data:`~illicitflows.transactions.schema.USD_PER_UNIT`). As in IBM's example, all edges go
    to GFP in one ``fit_transform`` batch, in timestamp order, over the whole frame (train, valid
    and test together).

    That batch output is **not causal**. ``fit_transform`` is ``fit`` (insert every edge) then
    ``transform`` (compute each edge's features on that graph), so pattern counts include later
    transactions inside the window, and vertex statistics are not bounded by the window at all:
    they cover about the whole batch, past and future. Checked with snapml 1.17.2: a row's
    features differ between a batch over a prefix, a batch over the whole frame and edge-by-edge
    ``transform``; only the last, one edge at a time in time order, is causal. The peer keeps
    IBM's protocol, so it sees the future that :class:`TransactionFeatureBuilder` does not.
    """

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        self.params = dict(GFP_BENCHMARK_PARAMS if params is None else params)

    @property
    def categorical_features(self) -> list[str]:
        return list(CATEGORICAL_FEATURES)

    def build(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Raw columns plus GFP's columns (``gfp_0``, ``gfp_1``, ...), indexed like ``frame``."""
        usd = frame["amount_paid"].to_numpy(dtype=np.float64) * usd_rate(
            frame["payment_currency"], USD_PER_UNIT)
        edges = edge_list(frame, usd)
        order = np.argsort(edges[:, TIMESTAMP], kind="stable")
        out = run_gfp(edges[order], self.params)
        features = np.empty((len(edges), out.shape[1] - N_EDGE_COLUMNS))
        features[out[:, EDGE_ID].astype(np.int64)] = out[:, N_EDGE_COLUMNS:]
        names = [f"gfp_{i}" for i in range(features.shape[1])]
        gfp = pd.DataFrame(features, columns=names, index=frame.index)
        return pd.concat([raw_features(frame, usd), gfp], axis=1)


def edge_list(frame: pd.DataFrame, usd: np.ndarray) -> np.ndarray:
    """GFP's input in frame order: [edge id, source id, target id, seconds, USD amount]."""
    n = len(frame)
    keys = pd.concat([frame["from_bank"].astype(str) + "|" + frame["from_account"].astype(str),
                      frame["to_bank"].astype(str) + "|" + frame["to_account"].astype(str)])
    ids, _ = pd.factorize(keys)
    stamps = frame["timestamp"].to_numpy(dtype="datetime64[s]").astype(np.int64)
    edges = np.empty((n, N_EDGE_COLUMNS), dtype=np.float64)
    edges[:, EDGE_ID] = np.arange(n)
    edges[:, SOURCE] = ids[:n]
    edges[:, TARGET] = ids[n:]
    edges[:, TIMESTAMP] = stamps - (stamps.min() if n else 0)
    edges[:, AMOUNT] = usd
    return edges


def run_gfp(edges: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    """GFP's output for ``edges``: the edge list, then its features (one ``fit_transform``)."""
    try:
        from snapml import GraphFeaturePreprocessor
    except ImportError as error:
        raise ImportError("the GFP peer needs snapml: pip install 'illicitflows[gfp]'") from error
    preprocessor = GraphFeaturePreprocessor()
    preprocessor.set_params(dict(params))
    return preprocessor.fit_transform(np.ascontiguousarray(edges, dtype=np.float64))


def raw_features(frame: pd.DataFrame, usd: np.ndarray) -> pd.DataFrame:
    """The raw columns of :data:`RAW_FEATURES`, categories as integer codes (NaN if unknown)."""
    stamp = frame["timestamp"]
    return pd.DataFrame({
        "amount_paid": frame["amount_paid"].to_numpy(dtype=np.float64),
        "payment_currency": _codes(_currency_names(frame["payment_currency"]), CURRENCY_CODES),
        "amount_received": frame["amount_received"].to_numpy(dtype=np.float64),
        "receiving_currency": _codes(_currency_names(frame["receiving_currency"]),
                                     CURRENCY_CODES),
        "payment_format": _codes(frame["payment_format"], PAYMENT_FORMAT_CODES),
        "amount_usd": usd,
        "hour": stamp.dt.hour.to_numpy(dtype=np.float64),
        "weekday": stamp.dt.day_of_week.to_numpy(dtype=np.float64),
    }, index=frame.index)


def _currency_names(currency: pd.Series) -> pd.Series:
    return currency.replace(CURRENCY_NAMES)


def _codes(values: pd.Series, categories: tuple[str, ...]) -> np.ndarray:
    codes = pd.Categorical(values, categories=categories).codes.astype(np.float64)
    codes[codes < 0] = np.nan
    return codes
