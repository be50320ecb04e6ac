"""Configuration of the trade features (validated; stored with every registered model)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TradeFeatureConfig(BaseModel):
    """Reference cells, smoothing and label timing of the causal trade features."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_reference_count: int = Field(
        20, ge=1, description="Training declarations a reference cell (HS6 x origin, HS6, HS4) "
                              "needs before it is used; sparser cells fall back to the coarser "
                              "level, down to HS2.")
    smoothing: float = Field(
        5.0, gt=0, description="Bayesian smoothing of past fraud rates: the training fraud rate "
                               "counts as this many pseudo-declarations.")
    label_lag_days: int = Field(
        0, ge=0, description="A finding becomes known this many days after its declaration "
                             "date; 0: visible from the next day on.")
    min_category_count: int = Field(
        20, ge=1, description="Training declarations a category (tax type, mode, office...) "
                              "needs to get its own code; rarer ones share 'other'.")
    max_categories: int = Field(
        60, ge=2, le=250, description="Most frequent categories kept per categorical column.")
    history_horizon_days: int | None = Field(
        365, ge=60, description="Party history horizon (days): a party, pair or consignment "
                                "idle for longer starts again from nothing when it returns "
                                "(its counts, tenure and distinct codes), so the state holds "
                                "what was active within the horizon; none: a key's whole "
                                "life (the state grows without end).")
    mirror_cif_per_fob: float = Field(
        1.06, gt=1, description="CIF / FOB factor applied to declared (CIF) values before they "
                                "are compared with partner-reported FOB exports.")
