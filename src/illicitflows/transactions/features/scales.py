"""Time scales measured from the data: which scale set (``config.SCALE_SETS``) the windows,
motif, chain and memory horizons take.

Feeds differ: AMLworld stamps transfers to the minute, AMLSim in whole-day steps, some banks
send batch files with dates only. Day-stamped data also tends to be sparse per account (an
account moves money every few weeks), so hour-scale windows see nothing but the transfer
itself. The profile is measured on the training data at ``fit`` and the chosen scale set
travels inside the fitted builder (and so in the registered detector and the service).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

DAY_S = 86_400
#: Timestamps on whole days at least this often: the feed moves in days.
WHOLE_DAY_SHARE = 0.95
#: An account's typical gap between transfers at least this long (days): patterns span weeks,
#: whatever the stamps' resolution.
SPARSE_GAP_DAYS = 3.0


@dataclass(frozen=True)
class TimeProfile:
    """What the data says about its time: resolution, per-account rhythm and span."""

    whole_day_share: float  # share of timestamps at midnight
    resolution_s: int  # largest of day / hour / minute / second dividing (almost) every stamp
    median_account_gap_h: float  # median over accounts of their median gap between transfers
    span_days: float
    transfers: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def measure(frame: pd.DataFrame) -> TimeProfile:
    """The time profile of canonical transactions."""
    stamps = frame["timestamp"].to_numpy(dtype="datetime64[s]").astype(np.int64)
    if len(stamps) == 0:
        return TimeProfile(0.0, 1, float("nan"), 0.0, 0)
    resolution = next((step for step in (DAY_S, 3600, 60)
                       if np.mean(stamps % step == 0) >= WHOLE_DAY_SHARE), 1)
    return TimeProfile(whole_day_share=float(np.mean(stamps % DAY_S == 0)),
                       resolution_s=int(resolution),
                       median_account_gap_h=_median_account_gap_h(frame, stamps),
                       span_days=float((stamps.max() - stamps.min()) / DAY_S),
                       transfers=len(stamps))


def choose_scale(profile: TimeProfile) -> str:
    """``days`` for day-stamped or sparse feeds, else ``hours``."""
    if profile.resolution_s >= DAY_S or profile.median_account_gap_h >= 24 * SPARSE_GAP_DAYS:
        return "days"
    return "hours"


def _median_account_gap_h(frame: pd.DataFrame, stamps: np.ndarray) -> float:
    """Median over accounts (sender or receiver, with two transfers or more) of the median
    gap between their successive transfers, in hours."""
    keys = pd.concat([frame["from_bank"].astype(str) + "|" + frame["from_account"].astype(str),
                      frame["to_bank"].astype(str) + "|" + frame["to_account"].astype(str)],
                     ignore_index=True)
    both = pd.DataFrame({"account": pd.factorize(keys)[0],
                         "t": np.concatenate([stamps, stamps])}).sort_values(["account", "t"])
    gaps = both.groupby("account")["t"].diff().dropna()
    if gaps.empty:
        return float("nan")
    per_account = gaps.groupby(both.loc[gaps.index, "account"]).median()
    return float(per_account.median() / 3600)
