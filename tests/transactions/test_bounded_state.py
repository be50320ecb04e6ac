"""The transaction feature state is bounded by the horizon: compaction (dropping old edges,
recycling idle accounts) changes no feature, and the state's size stays flat on a long
stream."""

from __future__ import annotations

import numpy as np
import pandas as pd

from illicitflows.transactions.features import FeatureConfig, TransactionFeatureBuilder
from illicitflows.transactions.features.state import HistoryState

START = pd.Timestamp("2022-09-01")
#: A 6-hour horizon (the risk memory's window), so that a short stream spans many of them.
CONFIG = FeatureConfig(windows_h=(1, 3), motif_window_h=4, chain_gap_h=1, chain_max_depth=3,
                       memory_window_h=6, memory_recent_h=2, memory_rounds=2, memory_depth=4,
                       scan_limit=8, motif_fanout_limit=4)
PER_HOUR = 250


def stream(hours: int, seed: int = 0) -> pd.DataFrame:
    """Transfers in time order (ties included) among a population that drifts by ten accounts
    an hour, so accounts go idle for good, plus returning accounts active eight hours out of
    sixteen: idle beyond the horizon, recycled, then back."""
    rng = np.random.default_rng(seed)
    n = hours * PER_HOUR
    minutes = np.sort(rng.integers(0, hours * 60, n))
    base = minutes // 6  # ten accounts an hour
    sides = []
    for _ in range(2):
        ids = np.array([f"A{i}" for i in base + rng.integers(0, 150, n)], dtype=object)
        returner = rng.integers(0, 20, n)
        awake = (minutes // (8 * 60)) % 2 == returner % 2
        use = awake & (rng.random(n) < 0.1)
        ids[use] = [f"R{k}" for k in returner[use]]
        sides.append(ids)
    amount = np.round(np.where(rng.random(n) < 0.1, rng.uniform(8000, 9999, n),
                               rng.lognormal(7, 1.5, n)), 2)
    return pd.DataFrame({
        "timestamp": START + pd.to_timedelta(minutes, unit="min"),
        "from_bank": "001", "from_account": sides[0], "to_bank": "002",
        "to_account": sides[1], "amount_received": amount, "receiving_currency": "US Dollar",
        "amount_paid": amount,
        "payment_currency": rng.choice(["US Dollar", "Euro", "Yen"], n),
        "payment_format": rng.choice(["Wire", "ACH", "Cash"], n),
    })


class WavyScorer:
    """A deterministic risk score of some input columns, spread over [0, 1]."""

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns

    def score(self, features: pd.DataFrame) -> np.ndarray:
        values = np.nan_to_num(features[self.columns].to_numpy(dtype=np.float64), nan=-1.0)
        return (np.sin(values @ np.linspace(0.3, 1.7, len(self.columns))) + 1) / 2


def builder(frame: pd.DataFrame) -> TransactionFeatureBuilder:
    built = TransactionFeatureBuilder(CONFIG).fit(frame)
    built.attach_memory(WavyScorer(["amount_usd", "receiver_in_degree_1h", "cycle_length",
                                    "pass_through_chain_depth"]), level=0.7)
    first = [name for name in built.round_inputs(1) if "prior_risk" in name]
    return built.attach_memory(WavyScorer(["amount_usd", *first]), level=0.6)


def chunks(n: int, seed: int) -> list[tuple[int, int]]:
    """Chunk bounds of varied sizes: single records (as the service gets them) to hundreds."""
    rng = np.random.default_rng(seed)
    bounds, start = [], 0
    while start < n:
        stop = min(n, start + int(rng.choice([1, 3, 40, 400])))
        bounds.append((start, stop))
        start = stop
    return bounds


def windows() -> np.ndarray:
    return np.asarray(CONFIG.windows_s, dtype=np.int64)


def test_compaction_changes_no_feature() -> None:
    frame = stream(hours=40)
    built = builder(frame)
    never = built.new_state()
    never.horizon_s = None  # keeps every edge and account
    auto, eager = built.new_state(), built.new_state()
    outputs: dict[str, list[pd.DataFrame]] = {"never": [], "auto": [], "eager": []}
    for start, stop in chunks(len(frame), seed=1):
        part = frame.iloc[start:stop]
        outputs["never"].append(built.transform(part, never))
        outputs["auto"].append(built.transform(part, auto))
        outputs["eager"].append(built.transform(part, eager))
        eager.compact(windows())  # after every chunk, single records included
    expected = pd.concat(outputs["never"])
    assert expected["sender_prior_risk_sum_r2"].gt(0).any()
    for name in ("auto", "eager"):
        pd.testing.assert_frame_equal(pd.concat(outputs[name]), expected, check_exact=True)
    assert auto.compactions > 3 and auto.edge_capacity < never.n_edges / 2
    # eagerly compacted: only the last horizon's edges, accounts and pairs are left
    assert eager.n_edges < never.n_edges / 4
    assert len(eager.accounts) < len(never.accounts) / 2
    assert len(eager.pair_last) < len(never.pair_last) / 4
    assert len(eager.pair_cnt) < len(never.pair_cnt) / 2
    assert not eager.accounts.keys() - never.accounts.keys()


def test_idle_accounts_are_recycled_and_come_back_in_a_free_slot() -> None:
    frame = stream(hours=40)
    built = builder(frame)
    state = built.new_state()
    built.transform(frame.iloc[:23 * PER_HOUR], state)  # odd returners idle since hour 16
    state.compact(windows())
    assert "001|R0" in state.accounts and "001|R1" not in state.accounts
    recycled = state.free_slots.tolist()
    assert recycled and all(state.slot_keys[slot] is None for slot in recycled)
    slots = len(state.slot_keys)
    built.transform(frame.iloc[23 * PER_HOUR:25 * PER_HOUR], state)  # odd ones awake again
    assert state.accounts["001|R1"] in recycled
    assert len(state.slot_keys) == slots  # new keys took free slots first
    assert all(state.slot_keys[slot] == key for key, slot in state.accounts.items())


def test_state_size_stays_flat_over_a_long_stream() -> None:
    hours = 240  # forty horizons
    frame = stream(hours=hours, seed=3)
    built = builder(frame)
    state = built.new_state()
    sizes = []
    per_hour = len(frame) // hours
    for start in range(0, len(frame), per_hour):
        built.transform(frame.iloc[start:start + per_hour], state)
        sizes.append(_sizes(state))
    sizes_frame = pd.DataFrame(sizes)
    early = sizes_frame.iloc[12:48].max()  # from the second horizon to the eighth
    late = sizes_frame.iloc[48:].max()
    assert (late <= early * 1.2).all(), pd.DataFrame({"early": early, "late": late})
    assert sizes_frame["accounts"].iloc[-1] < frame["from_account"].nunique() / 4


def _sizes(state: HistoryState) -> dict[str, int]:
    return {"edges": state.n_edges, "edge_capacity": state.edge_capacity,
            "accounts": len(state.accounts), "slots": len(state.slot_keys),
            "account_capacity": state.account_capacity, "pair_cnt": len(state.pair_cnt),
            "pair_last": len(state.pair_last)}
