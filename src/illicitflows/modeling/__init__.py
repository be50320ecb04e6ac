"""Shared modeling layer: splits, training, thresholds, metrics, the detector artifact."""
