"""Explanations: exact TreeSHAP contributions turned into analyst-readable reasons."""
