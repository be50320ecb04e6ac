"""The history state of the transaction features: every edge within the horizon and the
per-account window aggregates, in arrays the numba kernel updates in place."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numba import types
from numba.typed import Dict

from illicitflows.transactions.features.kernel import MAX_ACCOUNTS

EDGE_ARRAYS = {"e_t": np.int64, "e_src": np.int64, "e_dst": np.int64, "e_amt": np.int64,
               "e_near": np.int64, "e_log": np.int64, "e_chain": np.int64, "prev_out": np.int64,
               "next_out": np.int64, "prev_in": np.int64, "next_in": np.int64}
ACCOUNT_ARRAYS = {"head_out": np.int64, "head_in": np.int64, "stamp_a": np.int64,
                  "stamp_b": np.int64, "stamp_c": np.int64}
WINDOW_ARRAYS = {"tail": np.int64, "cnt": np.int64, "tot": np.int64, "near": np.int64,
                 "distinct": np.int64, "lsum": np.int64, "lsq": np.int64, "tsum": np.int64}
#: Risk memory rings (time, score, received or sent) per account and round, and each ring's
#: next slot: :mod:`~illicitflows.transactions.features.memory`.
RING_ARRAYS = {"ring_t": np.int64, "ring_s": np.float64, "ring_in": np.int8}
RING_POSITION = "ring_pos"
#: Arrays whose empty slots hold -1 (no edge / no entry); the others start at 0.
LINKS = {"prev_out", "next_out", "prev_in", "next_in", "head_out", "head_in", "tail", "ring_t"}


def _int_dict() -> Dict:
    return Dict.empty(key_type=types.int64, value_type=types.int64)


@dataclass
class HistoryState:
    """Edges seen so far (time-ordered) and per-account aggregates; grows on demand."""

    n_windows: int
    memory_depth: int = 32
    memory_rounds: int = 1
    accounts: dict[str, int] = field(default_factory=dict)
    n_edges: int = 0
    last_time: int | None = None
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    pair_cnt: Dict = field(default_factory=_int_dict)
    pair_last: Dict = field(default_factory=_int_dict)

    def __post_init__(self) -> None:
        if not self.arrays:
            self._allocate_edges(1024)
            self._allocate_accounts(1024)

    def account_ids(self, keys: np.ndarray) -> np.ndarray:
        """Dense ids for ``bank|account`` keys, assigning new ids in order of appearance."""
        inverse, uniques = pd.factorize(keys)
        ids = np.empty(len(uniques), dtype=np.int64)
        for k, key in enumerate(uniques.tolist()):
            ids[k] = self.accounts.setdefault(key, len(self.accounts))
        if len(self.accounts) >= MAX_ACCOUNTS:
            raise OverflowError(f"more than {MAX_ACCOUNTS:,} accounts in the history state")
        self._allocate_accounts(len(self.accounts))
        return ids[inverse]

    def rings(self, stage: int) -> tuple[np.ndarray, ...]:
        """Round ``stage``'s memory rings (time, score, received, next slot) of every account."""
        return tuple(self.arrays[name][:, stage] for name in (*RING_ARRAYS, RING_POSITION))

    def reserve_edges(self, n_new: int) -> None:
        """Make room for ``n_new`` more edges."""
        self._allocate_edges(self.n_edges + n_new)

    def _allocate_edges(self, needed: int) -> None:
        have = len(self.arrays.get("e_t", ()))
        if needed <= have:
            return
        size = max(needed, 2 * have, 1024)
        for name, dtype in EDGE_ARRAYS.items():
            self.arrays[name] = _grown(self.arrays.get(name), (size,), dtype, name in LINKS)

    def _allocate_accounts(self, needed: int) -> None:
        have = len(self.arrays.get("head_out", ()))
        if needed <= have:
            return
        size = max(needed, 2 * have, 1024)
        for name, dtype in ACCOUNT_ARRAYS.items():
            self.arrays[name] = _grown(self.arrays.get(name), (size,), dtype, name in LINKS)
        for name, dtype in WINDOW_ARRAYS.items():
            self.arrays[name] = _grown(self.arrays.get(name), (size, 2, self.n_windows), dtype,
                                       name in LINKS)
        rings = (size, self.memory_rounds, self.memory_depth)
        for name, dtype in RING_ARRAYS.items():
            self.arrays[name] = _grown(self.arrays.get(name), rings, dtype, name in LINKS)
        self.arrays[RING_POSITION] = _grown(self.arrays.get(RING_POSITION),
                                            (size, self.memory_rounds), np.int64, False)


def memory_rings(n_accounts: int, depth: int) -> tuple[np.ndarray, ...]:
    """Empty rings of one memory round for ``n_accounts`` accounts, laid out as
    :meth:`HistoryState.rings` (without the window aggregates a whole state carries)."""
    rings = tuple(_grown(None, (n_accounts, depth), dtype, name in LINKS)
                  for name, dtype in RING_ARRAYS.items())
    return (*rings, _grown(None, (n_accounts,), np.int64, False))


def _grown(old: np.ndarray | None, shape: tuple[int, ...], dtype: type, link: bool) -> np.ndarray:
    """A larger array holding ``old`` at its start; new slots are -1 for links, else 0."""
    new = np.full(shape, -1 if link else 0, dtype=dtype)
    if old is not None:
        new[: len(old)] = old
    return new
