"""Causal features of customs declarations (reference price bands, duty, route, party and
consignment history, mirror statistics) and the raw-column baseline."""

from illicitflows.trade.features.builder import (
    FEATURES_VERSION,
    LateDeclarationError,
    TradeFeatureBuilder,
)
from illicitflows.trade.features.catalog import feature_specs
from illicitflows.trade.features.config import TradeFeatureConfig
from illicitflows.trade.features.history import TradeHistory

__all__ = [
    "FEATURES_VERSION",
    "LateDeclarationError",
    "TradeFeatureBuilder",
    "TradeFeatureConfig",
    "TradeHistory",
    "feature_specs",
]
