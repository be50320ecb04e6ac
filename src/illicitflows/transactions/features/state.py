"""The history state of the transaction features: every edge within the horizon and the
per-account window aggregates, in arrays the numba kernel updates in place.

The state is bounded by the horizon (:attr:`HistoryState.horizon_s`): before a batch that the
edge arrays cannot hold, or once the accounts in use have doubled since the last compaction,
:meth:`HistoryState.compact` drops the edges older than the horizon (the live ones move to the
front, their links remapped) and recycles the slots of accounts without a live edge (free list;
their keys leave :attr:`HistoryState.accounts`). Compaction changes no feature: every search
stops at the horizon, and the window aggregates are first expired up to the state's clock, as
the next transfer of each account would expire them. Memory is then set by the horizon's volume,
not by how long the state has run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numba import types
from numba.typed import Dict

from illicitflows.transactions.features.kernel import MAX_ACCOUNTS, expire_all, remap_pairs

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
#: Edge arrays holding edge positions, remapped when the edges move.
EDGE_LINKS = ("prev_out", "next_out", "prev_in", "next_in")
#: Per-account arrays holding edge positions.
ACCOUNT_LINKS = ("head_out", "head_in", "tail")
#: Per-account search marks (edge position + 1 of the search that set them).
STAMPS = ("stamp_a", "stamp_b", "stamp_c")
MIN_SIZE = 1024


def _int_dict() -> Dict:
    return Dict.empty(key_type=types.int64, value_type=types.int64)


@dataclass
class HistoryState:
    """Edges within the horizon (time-ordered) and per-account aggregates; grows on demand
    and, with a ``horizon_s``, drops what the horizon no longer sees (:meth:`compact`).

    ``lateness_s`` keeps that much more history: a caller accepting records up to that far
    behind :attr:`last_time` sets it, so that compaction never takes what they would see."""

    n_windows: int
    memory_depth: int = 32
    memory_rounds: int = 1
    horizon_s: int | None = None
    lateness_s: int = 0
    accounts: dict[str, int] = field(default_factory=dict)
    n_edges: int = 0
    last_time: int | None = None
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    pair_cnt: Dict = field(default_factory=_int_dict)
    pair_last: Dict = field(default_factory=_int_dict)
    #: The key of each account slot in use (None: a free slot).
    slot_keys: list[str | None] = field(default_factory=list)
    #: Free slots (recycled accounts), the next one to give out last.
    free_slots: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    #: Compaction also runs once this many accounts are in use.
    account_check: int = MIN_SIZE
    compactions: int = 0

    def __post_init__(self) -> None:
        if not self.arrays:
            self._allocate_edges(MIN_SIZE)
            self._allocate_accounts(MIN_SIZE)

    @property
    def edge_capacity(self) -> int:
        return len(self.arrays["e_t"])

    @property
    def account_capacity(self) -> int:
        return len(self.arrays["head_out"])

    def account_ids(self, keys: np.ndarray) -> np.ndarray:
        """Dense ids for ``bank|account`` keys, assigning new ids (free slots first) in order
        of appearance."""
        inverse, uniques = pd.factorize(keys)
        ids = np.empty(len(uniques), dtype=np.int64)
        accounts = self.accounts
        for k, key in enumerate(uniques.tolist()):
            slot = accounts.get(key)
            ids[k] = slot if slot is not None else self._new_slot(key)
        self._allocate_accounts(len(self.slot_keys))
        return ids[inverse]

    def _new_slot(self, key: str) -> int:
        if len(self.free_slots):
            slot = int(self.free_slots[-1])
            self.free_slots = self.free_slots[:-1]
            self.slot_keys[slot] = key
        else:
            slot = len(self.slot_keys)
            if slot >= MAX_ACCOUNTS:
                raise OverflowError(f"more than {MAX_ACCOUNTS:,} accounts in the history state")
            self.slot_keys.append(key)
        self.accounts[key] = slot
        return slot

    def rings(self, stage: int) -> tuple[np.ndarray, ...]:
        """Round ``stage``'s memory rings (time, score, received, next slot) of every account."""
        return tuple(self.arrays[name][:, stage] for name in (*RING_ARRAYS, RING_POSITION))

    def reserve_edges(self, n_new: int, windows: np.ndarray | None = None) -> None:
        """Make room for ``n_new`` more edges. Given the kernel's ``windows`` (seconds) and a
        horizon, first :meth:`compact` when the arrays are full or the accounts in use have
        doubled since the last compaction."""
        full = self.n_edges + n_new > self.edge_capacity
        crowded = len(self.accounts) > self.account_check
        if windows is not None and (full or crowded) and self._bounded():
            self.compact(windows)
            self._fit_edges(self.n_edges + n_new)
        self._allocate_edges(self.n_edges + n_new)

    def _bounded(self) -> bool:
        return self.horizon_s is not None and self.last_time is not None

    def compact(self, windows: np.ndarray) -> None:
        """Drop edges older than the horizon before :attr:`last_time` (less ``lateness_s``)
        and recycle the accounts left without an edge; features stay exactly as they were.

        The window aggregates of every account are first expired at that time, as its next
        transfer would: none then holds a dropped edge (the horizon is at least the longest
        window), and the pair counts of expired pairs are gone. Searches stop at the horizon,
        so links to dropped edges become -1 and the kept edges keep their order."""
        if not self._bounded():
            raise ValueError("compaction needs a horizon and a history")
        now = int(self.last_time) - self.lateness_s
        cutoff = now - int(self.horizon_s)
        a = self.arrays
        n, slots = self.n_edges, len(self.slot_keys)
        expire_all(slots, now, np.asarray(windows, dtype=np.int64), a["tail"], a["cnt"],
                   a["tot"], a["near"], a["distinct"], a["lsum"], a["lsq"], a["tsum"], a["e_t"],
                   a["e_amt"], a["e_near"], a["e_log"], a["next_out"], a["next_in"], a["e_src"],
                   a["e_dst"], self.pair_cnt)
        live = a["e_t"][:n] >= cutoff
        moved = np.full(n, -1, dtype=np.int64)
        kept = int(np.count_nonzero(live))
        moved[live] = np.arange(kept)
        for name in EDGE_ARRAYS:
            values = a[name][:n][live]
            if name in EDGE_LINKS:
                values = _remapped(values, moved)
            a[name][:kept] = values
            a[name][kept:n] = -1 if name in LINKS else 0
        for name in ACCOUNT_LINKS:
            a[name][:slots] = _remapped(a[name][:slots], moved)
        for name in STAMPS:  # marks are edge positions, which have moved
            a[name][:] = 0
        remap_pairs(self.pair_last, moved)
        self.n_edges = kept
        self._recycle_idle(slots)
        self.account_check = max(2 * len(self.accounts), MIN_SIZE)
        self.compactions += 1

    def _recycle_idle(self, slots: int) -> None:
        """Free the slots of accounts without a live edge: their windows are empty and their
        risk memory older than the horizon; they start over when the key comes back."""
        a = self.arrays
        in_use = np.array([key is not None for key in self.slot_keys], dtype=bool)
        idle = np.flatnonzero(in_use & (a["head_out"][:slots] == -1)
                              & (a["head_in"][:slots] == -1))
        for slot in idle.tolist():
            del self.accounts[self.slot_keys[slot]]
            self.slot_keys[slot] = None
        for names in (ACCOUNT_ARRAYS, WINDOW_ARRAYS, RING_ARRAYS):
            for name in names:
                a[name][idle] = -1 if name in LINKS else 0
        a[RING_POSITION][idle] = 0
        in_use[idle] = False
        self.free_slots = np.flatnonzero(~in_use)[::-1].copy()  # lowest slot given out first

    def _fit_edges(self, needed: int) -> None:
        """After a compaction: room for half as much again as is needed (so that compactions
        are at least a third of the arrays apart), else twice what is needed; and at most four
        times what is needed (a burst's arrays are given back)."""
        have = self.edge_capacity
        if 3 * needed <= 2 * have <= 8 * max(needed, MIN_SIZE):
            return
        size = max(2 * needed, MIN_SIZE)
        for name, dtype in EDGE_ARRAYS.items():
            new = np.full(size, -1 if name in LINKS else 0, dtype=dtype)
            new[:self.n_edges] = self.arrays[name][:self.n_edges]
            self.arrays[name] = new

    def _allocate_edges(self, needed: int) -> None:
        have = len(self.arrays.get("e_t", ()))
        if needed <= have:
            return
        size = max(needed, 2 * have, MIN_SIZE)
        for name, dtype in EDGE_ARRAYS.items():
            self.arrays[name] = _grown(self.arrays.get(name), (size,), dtype, name in LINKS)

    def _allocate_accounts(self, needed: int) -> None:
        have = len(self.arrays.get("head_out", ()))
        if needed <= have:
            return
        size = max(needed, 2 * have, MIN_SIZE)
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


def _remapped(links: np.ndarray, moved: np.ndarray) -> np.ndarray:
    """Edge positions after a compaction (``moved``: new position of each old one, -1 for a
    dropped edge); -1 stays -1."""
    return np.where(links >= 0, moved[np.maximum(links, 0)], -1)


def _grown(old: np.ndarray | None, shape: tuple[int, ...], dtype: type, link: bool) -> np.ndarray:
    """A larger array holding ``old`` at its start; new slots are -1 for links, else 0."""
    new = np.full(shape, -1 if link else 0, dtype=dtype)
    if old is not None:
        new[: len(old)] = old
    return new
