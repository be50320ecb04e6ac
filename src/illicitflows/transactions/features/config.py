"""Configuration of the transaction features (validated; stored with every registered model)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

HOUR = 3600
DAY_H = 24.0

#: The time-scale fields and their values per named scale set. ``hours`` fits feeds with
#: minute or second timestamps and patterns over hours to days (IBM AMLworld); ``days`` fits
#: feeds moving in whole days whose patterns span weeks (AMLSim, dated batch files).
SCALE_SETS: dict[str, dict[str, object]] = {
    "hours": {"windows_h": (1.0, 6.0, 24.0, 168.0), "motif_window_h": 72.0, "chain_gap_h": 24.0,
              "memory_window_h": 168.0, "memory_recent_h": 24.0},
    "days": {"windows_h": (DAY_H, 7 * DAY_H, 30 * DAY_H, 90 * DAY_H),
             "motif_window_h": 30 * DAY_H, "chain_gap_h": 7 * DAY_H,
             "memory_window_h": 90 * DAY_H, "memory_recent_h": 7 * DAY_H},
}
TimeScale = Literal["auto", "hours", "days"]


class FeatureConfig(BaseModel):
    """Windows, thresholds and search limits of the causal transaction features."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    time_scale: TimeScale = Field(
        "auto", description="Scale set of the windows, motif, chain and memory horizons "
        "(SCALE_SETS): auto measures the training data's time resolution and activity at fit; "
        "fields given explicitly keep their value.")
    windows_h: tuple[float, ...] = Field(
        (1, 6, 24, 168), description="Per-account aggregation windows in hours.")
    reporting_threshold_usd: float = Field(
        10_000, gt=0, description="Cash/transfer reporting threshold (structuring).")
    near_threshold_share: float = Field(
        0.8, gt=0, lt=1, description="'Just below the threshold' starts at this share of it.")
    motif_window_h: float = Field(
        72, gt=0, description="Window for cycles, scatter-gather and bipartite motifs.")
    max_cycle_length: int = Field(6, ge=2, le=10, description="Longest temporal cycle searched.")
    chain_gap_h: float = Field(
        24, gt=0, description="Pass-through chain: funds leave within this time of arriving.")
    chain_max_depth: int = Field(
        5, ge=1, le=20, description="Pass-through chain depth is counted up to this many hops.")
    chain_amount_band: tuple[float, float] = Field(
        (0.5, 1.05), description="Pass-through chain: outgoing / incoming amount ratio band.")
    scan_limit: int = Field(
        16, ge=1, le=256, description="Most recent edges scanned per account in searches.")
    motif_fanout_limit: int = Field(
        8, ge=1, le=64, description="Neighbours scanned per hop for scatter-gather / bipartite.")
    frontier_limit: int = Field(
        64, ge=1, le=4096, description="Accounts kept per hop of the cycle search.")
    cycle_budget: int = Field(
        512, ge=16, le=100_000, description="Edges examined at most by one cycle search.")
    risk_memory: bool = Field(
        True, description="Staged model: each account remembers the risk scores of its recent "
                          "transfers, and the next stage reads that memory.")
    memory_rounds: int = Field(
        1, ge=1, le=4, description="Risk memory rounds: round r's model reads the base features "
                                   "and the memory of the rounds before it, so each round "
                                   "reaches one hop further; the final model reads every round.")
    memory_window_h: float = Field(
        168, gt=0, description="Risk memory: how far back an account's earlier scores count.")
    memory_recent_h: float = Field(
        24, gt=0, description="Risk memory: the recent part of the window (its own maximum).")
    memory_depth: int = Field(
        32, ge=1, le=1024, description="Risk memory: most recent transfers kept per account.")
    usd_per_unit: dict[str, float] | None = Field(
        None, description="Currency table (USD per unit); default: rates implied by the data, "
                          "falling back to the built-in table.")

    @field_validator("windows_h")
    @classmethod
    def _sorted_windows(cls, windows: tuple[float, ...]) -> tuple[float, ...]:
        if not windows or len(windows) > 8 or any(w <= 0 for w in windows):
            raise ValueError("windows_h needs 1 to 8 positive windows")
        return tuple(sorted(windows))

    def with_time_scale(self, scale: str) -> FeatureConfig:
        """This configuration on scale set ``scale``: every time-scale field not given
        explicitly takes the set's value (the defaults are the ``hours`` set)."""
        update = {name: value for name, value in SCALE_SETS[scale].items()
                  if name not in self.model_fields_set}
        return self.model_copy(update={**update, "time_scale": scale})

    @property
    def windows_s(self) -> list[int]:
        return [int(round(w * HOUR)) for w in self.windows_h]

    @property
    def horizon_s(self) -> int:
        """How far back any feature looks: history older than this never matters."""
        return max(self.windows_s[-1], int(self.motif_window_h * HOUR),
                   int(self.chain_max_depth * self.chain_gap_h * HOUR),
                   int(self.memory_window_h * HOUR))


def window_label(hours: float) -> str:
    """``1h``, ``24h``, ``7d`` style labels used in feature names and sentences."""
    if hours >= 24 and hours % 24 == 0 and hours != 24:
        return f"{int(hours // 24)}d"
    return f"{hours:g}h"
