"""Causal features of payment transactions (per transaction, per account window, graph motifs)."""

from illicitflows.transactions.features.builder import (
    FEATURES_VERSION,
    LateRecordError,
    TransactionFeatureBuilder,
)
from illicitflows.transactions.features.catalog import FeatureSpec, feature_specs
from illicitflows.transactions.features.config import FeatureConfig
from illicitflows.transactions.features.state import HistoryState

__all__ = [
    "FEATURES_VERSION",
    "FeatureConfig",
    "FeatureSpec",
    "HistoryState",
    "LateRecordError",
    "TransactionFeatureBuilder",
    "feature_specs",
]
