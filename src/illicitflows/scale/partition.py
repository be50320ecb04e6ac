"""Time partitions and their warm-up: which staged rows a partition replays before its own.

A partition is ``[k * period, (k + 1) * period)`` in epoch seconds, so equal timestamps always
fall in one partition (a boundary lies between distinct timestamps). Every transaction feature
looks back at most ``FeatureConfig.horizon_s`` (windows, motif window, chain depth x gap, risk
memory window), so computing partition ``k`` from an empty history after replaying the rows
with ``t >= k * period - horizon`` gives the one-pass features of its rows. The replayed rows
sit in the ``ceil(horizon / period)`` partitions before ``k``.

Why each family is bounded by the horizon: window aggregates, distinct counterparties and
``pair_prior_transfers`` expire by window; ``pair_last`` (reverse pairs, scatter-gather,
bipartite) is only trusted within the window it is checked against; ``hours_since_previous``
is NaN beyond the horizon and ``active_hours`` starts at the longest window's oldest edge; motif
searches stop at the first edge older than the motif window; a chain's depth is capped at
``chain_max_depth`` hops of at most ``chain_gap_h`` each; the risk memory keeps an account's
last ``memory_depth`` transfers but reads only those within its window, which are the same
whether older ones were seen or not (its sums may add in another order: 1e-16 apart). Two
things are not bounded and are handled outside the partitions: the currency rates (implied
from every USD payment of the input, gathered while staging) and the memory rounds' scores
(each round's warm-up replays scores computed for their own partitions, :mod:`.features`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from illicitflows.scale.source import ROW, StagedInput

#: What the risk memory reads of a transfer: its time, its accounts and (to order transfers
#: sharing a timestamp as the single process does) its amount.
ACCOUNT_COLUMNS = ["timestamp", "from_bank", "from_account", "to_bank", "to_account",
                   "amount_paid"]


@dataclass(frozen=True)
class Partition:
    """Partition ``key`` of ``period`` seconds, replaying ``horizon`` seconds before it."""

    key: int
    period: int
    horizon: int

    @property
    def start(self) -> int:
        return self.key * self.period

    @property
    def warm_from(self) -> int:
        return self.start - self.horizon

    def warm_keys(self) -> range:
        """The partitions holding this one's warm-up rows (some may be absent: no rows)."""
        return range(self.key - -(-self.horizon // self.period), self.key)

    def label(self) -> str:
        """The partition's start as ``YYYYMMDDTHHMMSS`` (file names)."""
        return pd.Timestamp(self.start, unit="s").strftime("%Y%m%dT%H%M%S")


def partitions(staged: StagedInput, horizon: int) -> list[Partition]:
    """Every partition holding rows, in time order."""
    return [Partition(key, staged.period, horizon) for key in staged.partitions]


def seconds(frame: pd.DataFrame) -> np.ndarray:
    """A frame's timestamps in epoch seconds."""
    return frame["timestamp"].to_numpy(dtype="datetime64[s]").astype(np.int64)


def time_sorted(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows by (timestamp, row number): the single process's order (ties in input order)."""
    order = np.lexsort((frame[ROW].to_numpy(), seconds(frame)))
    return frame.iloc[order].reset_index(drop=True)


def read_rows(files: list[Path], since: int, columns: list[str] | None = None) -> pd.DataFrame:
    """Staged rows of ``files`` with ``t >= since`` (epoch seconds), in time order."""
    frames = [pd.read_parquet(f, columns=columns) for f in files]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return time_sorted(frame[seconds(frame) >= since])
