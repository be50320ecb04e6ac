"""The trade party history is bounded by its horizon: each key's history is its activity spell
(module documentation of ``trade.features.history``), checked against counting by hand; the
state stays flat over a long stream of parties coming and going, and dropping idle keys
changes no feature."""

from __future__ import annotations

import pickle
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from illicitflows.trade.features import TradeFeatureBuilder, TradeHistory
from illicitflows.trade.features.builder import LIFETIME_VERSION
from illicitflows.trade.features.config import TradeFeatureConfig
from illicitflows.trade.simulate import TradeSimulationConfig, simulate_trade

HORIZON = 90
DAYS = 1600


class NeverCompacted(TradeHistory):
    """The same features' state, keeping every key."""

    def compact(self) -> None:
        return None


@pytest.fixture(scope="module")
def stream() -> pd.DataFrame:
    """4,000 declarations over 1,600 days: importers and declarants that work for about 100
    days each (a new set every 100 days), and five importers that stop for 200 days
    (beyond the horizon) and come back."""
    frame = simulate_trade(TradeSimulationConfig(declarations=4000, seed=1)).declarations
    rng = np.random.default_rng(0)
    day = np.sort(rng.integers(0, DAYS, len(frame)))
    frame = frame.assign(date=pd.Timestamp("2020-01-01") + pd.to_timedelta(day, unit="D"))
    generation = day // 100
    importers = [f"imp-{g}-{k}" for g, k in zip(generation, rng.integers(0, 25, len(frame)),
                                                 strict=True)]
    returning = ((day // 200) % 2 == 0) & (rng.random(len(frame)) < 0.15)
    frame["importer_id"] = np.where(returning, [f"back-{k}" for k in rng.integers(0, 5,
                                                                                  len(frame))],
                                    importers)
    frame["declarant_id"] = [f"dec-{g}-{k}" for g, k in zip(
        generation, rng.integers(0, 6, len(frame)), strict=True)]
    return frame.reset_index(drop=True)


def by_hand(frame: pd.DataFrame, horizon: float) -> pd.DataFrame:
    """Importer counts, tenure and distinct HS6 codes, by the definition, one row at a time:
    a key's history is the run of its declarations without a gap longer than the horizon."""
    days = ((frame["date"] - pd.Timestamp("1900-01-01")).dt.days).to_numpy()
    spells: dict = {}  # key -> (first day, last day, days before today: count)
    out = defaultdict(list)

    def spell(key, day):
        found = spells.get(key)
        if found is None or day - found["last"] > horizon:
            return None
        return found

    pairs: dict = {}
    for row in range(len(frame)):
        importer, hs6, day = frame["importer_id"][row], frame["hs6"][row], days[row]
        current = spell(importer, day)
        out["count"].append(0 if current is None else
                            sum(1 for d in current["days"] if d < day))
        first = None if current is None else min(current["days"])
        out["tenure"].append(np.nan if first is None or first >= day else day - first)
        out["distinct"].append(0 if current is None else
                               sum(1 for d in current["new_pairs"] if d < day))
        pair = pairs.get((importer, hs6))
        new_pair = pair is None or day - pair > horizon
        pairs[(importer, hs6)] = day
        if current is None:
            current = spells[importer] = {"days": [], "new_pairs": [], "last": day}
        current["days"].append(day)
        current["last"] = day
        if new_pair:
            current["new_pairs"].append(day)
    return pd.DataFrame(out)


def features_in_chunks(builder: TradeFeatureBuilder, frame: pd.DataFrame, state: TradeHistory,
                       chunks: int) -> tuple[pd.DataFrame, list[int]]:
    parts, sizes = [], []
    for rows in np.array_split(np.arange(len(frame)), chunks):
        parts.append(builder.transform(frame.iloc[rows], state))
        sizes.append(sum(state.sizes().values()))
    return pd.concat(parts), sizes


@pytest.mark.parametrize("horizon", [HORIZON, None])
def test_party_history_is_the_activity_spell(stream, horizon) -> None:
    builder = TradeFeatureBuilder(TradeFeatureConfig(history_horizon_days=horizon))
    builder.fit(stream.iloc[:300])
    features = builder.transform(stream, builder.new_state())
    expected = by_hand(stream, np.inf if horizon is None else horizon)
    np.testing.assert_array_equal(features["importer_prior_declarations"], expected["count"])
    np.testing.assert_array_equal(features["importer_tenure_days"], expected["tenure"])
    np.testing.assert_array_equal(features["importer_distinct_hs6"], expected["distinct"])
    comeback = stream["importer_id"].str.startswith("back-")
    if horizon is not None:  # the returning importers start again after 200 idle days
        assert (features.loc[comeback, "importer_prior_declarations"] == 0).sum() >= 5 * 4


def test_state_stays_flat_and_dropping_idle_keys_changes_no_feature(stream) -> None:
    builder = TradeFeatureBuilder(TradeFeatureConfig(history_horizon_days=HORIZON))
    builder.fit(stream.iloc[:300])
    bounded = builder.new_state()
    kept = NeverCompacted(**vars(builder.new_state()))
    got, sizes = features_in_chunks(builder, stream, bounded, 40)
    expected, grown = features_in_chunks(builder, stream, kept, 40)
    pd.testing.assert_frame_equal(got, expected)
    pd.testing.assert_frame_equal(got, builder.transform(stream, builder.new_state()))
    sizes, grown = np.array(sizes), np.array(grown)
    steady = sizes[len(sizes) // 4:]  # after the first 400 days (4 horizons)
    assert steady.max() <= 1.5 * steady.min(), sizes
    assert grown[-1] > 4 * sizes[-1], (grown[-1], sizes[-1])  # without compaction it grows


def test_a_builder_fitted_before_the_horizon_keeps_lifetime_counts(stream) -> None:
    builder = TradeFeatureBuilder(TradeFeatureConfig(history_horizon_days=None))
    builder.fit(stream.iloc[:300])
    old = pickle.loads(pickle.dumps(builder))
    del old.config.__dict__["history_horizon_days"]  # as pickled by the earlier version
    for counts in old.history_.counts.values():
        del counts.__dict__["last"], counts.__dict__["horizon"]
    del old.history_.__dict__["horizon_days"], old.history_.__dict__["compacted_day"]
    loaded = pickle.loads(pickle.dumps(old))
    assert loaded.config.history_horizon_days is None and loaded.version == LIFETIME_VERSION
    later = stream.iloc[300:1000]
    pd.testing.assert_frame_equal(loaded.transform(later, loaded.scoring_state()),
                                  builder.transform(later, builder.scoring_state()))
