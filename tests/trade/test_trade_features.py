"""Causal trade features: training-only references, causal history, chunk parity, catalogue."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from illicitflows.trade.features import (
    LateDeclarationError,
    TradeFeatureBuilder,
    TradeFeatureConfig,
)
from illicitflows.trade.features.catalog import (
    CONSIGNMENT,
    DUTY,
    MIRROR,
    PARTY,
    PRICE,
    RELATIONSHIP,
    ROUTE,
)
from illicitflows.trade.features.raw import RawColumnsBuilder
from illicitflows.trade.simulate import SimulatedTrade, TradeSimulationConfig, simulate_trade

FAMILIES = {PRICE, DUTY, ROUTE, RELATIONSHIP, PARTY, CONSIGNMENT, MIRROR}
SMALL = TradeSimulationConfig(declarations=6_000, days=120, importers=400, declarants=40,
                              sellers=500, products=120, shell_importers=10, fraud_rate=0.1,
                              seed=3)


@pytest.fixture(scope="module")
def sim() -> SimulatedTrade:
    return simulate_trade(SMALL)


@pytest.fixture(scope="module")
def train_mask(sim: SimulatedTrade) -> np.ndarray:
    return (sim.declarations["date"] < pd.Timestamp("2022-03-01")).to_numpy()


@pytest.fixture(scope="module")
def fitted(sim: SimulatedTrade, train_mask: np.ndarray) -> TradeFeatureBuilder:
    return TradeFeatureBuilder(mirror=sim.mirror).fit(sim.declarations[train_mask])


def declarations(rows: list[tuple[str, str, str, float, int]]) -> pd.DataFrame:
    """Declarations from (date, importer, seller, declared value, fraud); the rest fixed."""
    n = len(rows)
    return pd.DataFrame({
        "declaration_id": [f"D{i}" for i in range(n)],
        "date": pd.to_datetime([r[0] for r in rows]),
        "office_id": "OF1", "importer_id": [r[1] for r in rows], "declarant_id": "DCL1",
        "seller_id": [r[2] for r in rows], "courier_id": "", "hs6": "850440",
        "origin_country": "CN", "departure_country": "CN", "transport_mode": "10",
        "quantity": np.nan, "net_mass_kg": 100.0, "declared_value": [r[3] for r in rows],
        "currency": "USD", "tax_rate": 8.0, "tax_type": "MFN",
        "fraud": np.array([r[4] for r in rows], dtype=np.int8),
    })


def test_every_feature_has_a_spec_and_a_column(sim: SimulatedTrade,
                                               fitted: TradeFeatureBuilder) -> None:
    features = fitted.transform(sim.declarations.iloc[:500])
    names = fitted.feature_names
    assert list(features.columns) == names
    assert len(set(names)) == len(names)
    assert features.index.equals(sim.declarations.index[:500])
    for spec in fitted.specs:
        assert spec.family in FAMILIES, spec.name
        assert spec.description and spec.reason(1.0)
        assert pd.api.types.is_numeric_dtype(features[spec.name]), spec.name
    assert {"mirror_unit_value_ratio", "mirror_value_gap"} <= set(names)
    assert "mirror_value_gap" not in TradeFeatureBuilder().fit(sim.declarations).feature_names
    categorical = set(fitted.categorical_features)
    assert {"tax_type", "transport_mode", "transshipment"} <= categorical
    for name in categorical:
        codes = features[name].dropna()
        spec = next(s for s in fitted.specs if s.name == name)
        assert ((codes >= 0) & (codes < len(spec.categories))).all(), name


def test_reference_statistics_never_see_other_rows(sim: SimulatedTrade, train_mask: np.ndarray,
                                                   fitted: TradeFeatureBuilder) -> None:
    frame = sim.declarations
    reference = pickle.dumps((fitted.price_hs6_origin_, fitted.price_hs6_, fitted.shares_,
                              fitted.tax_rate_hs6_, fitted.vocabularies_, fitted.findings_))
    before = fitted.transform(frame)
    test_rows = np.flatnonzero(~train_mask)
    hs6 = frame["hs6"].iloc[test_rows[0]]
    changed = frame.copy()
    changed.loc[changed.index[test_rows[0]], "declared_value"] *= 100.0
    after = fitted.transform(changed)
    assert pickle.dumps((fitted.price_hs6_origin_, fitted.price_hs6_, fitted.shares_,
                         fitted.tax_rate_hs6_, fitted.vocabularies_,
                         fitted.findings_)) == reference
    others = (frame["hs6"] == hs6).to_numpy() & (np.arange(len(frame)) != test_rows[0])
    for name in ("value_per_kg_z_hs6", "value_per_kg_iqr_hs6", "value_per_kg_percentile_hs6"):
        pd.testing.assert_series_equal(before[name][others], after[name][others])
    assert after["value_per_kg_z_hs6"].iloc[test_rows[0]] > before[
        "value_per_kg_z_hs6"].iloc[test_rows[0]] + 3


def test_price_band_falls_back_to_coarser_levels(sim: SimulatedTrade,
                                                 train_mask: np.ndarray) -> None:
    frame = sim.declarations
    strict = TradeFeatureBuilder(TradeFeatureConfig(min_reference_count=10**6)).fit(
        frame[train_mask])
    loose = TradeFeatureBuilder(TradeFeatureConfig(min_reference_count=1)).fit(
        frame[train_mask])
    assert strict.transform(frame)["reference_level"].isna().all()
    levels = loose.transform(frame)["reference_level"]
    assert (levels[train_mask] == 0).all()  # every training cell has its own rows


def test_a_finding_affects_only_later_declarations() -> None:
    days = ["2022-01-03", "2022-01-05", "2022-01-05", "2022-01-07", "2022-01-10"]
    rows = [(d, "IMP1", "S1", 1000.0, 0) for d in days] + [("2022-01-10", "IMP9", "S9", 9.0, 1)]
    clean = declarations(rows)
    found = clean.copy()
    found["fraud"] = np.array([0, 1, 0, 0, 0, 0], dtype=np.int8)  # found on 2022-01-05, same prior
    for lag, unaffected in ((0, 3), (3, 4)):
        config = TradeFeatureConfig(label_lag_days=lag)
        a = TradeFeatureBuilder(config).fit(clean).transform(clean)
        b = TradeFeatureBuilder(config).fit(found).transform(clean)
        pd.testing.assert_frame_equal(a.iloc[:unaffected], b.iloc[:unaffected])
        assert b["importer_prior_findings"].iloc[unaffected] == 1
        assert b["importer_fraud_rate"].iloc[unaffected] > a["importer_fraud_rate"].iloc[
            unaffected]


def test_scored_declarations_add_counts_and_later_findings_only() -> None:
    frame = declarations([("2022-01-03", "IMP1", "S1", 10.0, 0),
                          ("2022-01-04", "IMP1", "S1", 20.0, 1),
                          ("2022-01-06", "IMP1", "S1", 30.0, 0)])
    builder = TradeFeatureBuilder().fit(frame.iloc[:1])
    state = builder.new_state()
    builder.transform(frame.iloc[:1], state)  # a service warms its state with the history
    scored = builder.transform(frame.iloc[1:2], state)
    assert scored["importer_prior_findings"].iloc[0] == 0
    unlabelled = pickle.loads(pickle.dumps(state))
    later = builder.transform(frame.iloc[2:], unlabelled)
    assert later["importer_prior_declarations"].iloc[0] == 2  # counts grow with scoring
    assert later["importer_prior_findings"].iloc[0] == 0  # the scored label stays unknown
    builder.record_findings(frame.iloc[1:2], state)  # the inspection result comes back
    assert builder.transform(frame.iloc[2:], state)["importer_prior_findings"].iloc[0] == 1


def test_history_counts_earlier_days_only() -> None:
    frame = declarations([
        ("2022-01-03", "IMP1", "S1", 1000.0, 0), ("2022-01-03", "IMP1", "S1", 1000.0, 0),
        ("2022-01-04", "IMP1", "S2", 1000.0, 1), ("2022-01-09", "IMP1", "S1", 500.0, 0),
        ("2022-01-09", "IMP2", "", 1000.0, 0),
    ])
    features = TradeFeatureBuilder().fit(frame).transform(frame)
    assert features["importer_prior_declarations"].tolist() == [0, 0, 2, 3, 0]
    assert features["importer_tenure_days"].tolist()[2:4] == [1, 6]
    assert np.isnan(features["importer_tenure_days"].iloc[0])
    assert features["importer_seller_prior_declarations"].tolist()[:4] == [0, 0, 0, 2]
    assert np.isnan(features["importer_seller_prior_declarations"].iloc[4])  # no seller
    assert np.isnan(features["seller_fraud_rate"].iloc[4])
    assert features["identical_consignment_prior"].tolist() == [0, 0, 2, 0, 3]
    assert features["identical_consignment_findings"].tolist() == [0, 0, 0, 0, 1]
    assert features["importer_distinct_hs6"].tolist() == [0, 0, 1, 1, 0]
    assert features["declarant_distinct_importers"].tolist() == [0, 0, 1, 1, 1]
    assert features["importer_prior_findings"].tolist() == [0, 0, 0, 1, 0]


def test_chunks_in_date_order_equal_one_pass(sim: SimulatedTrade,
                                             fitted: TradeFeatureBuilder) -> None:
    frame = sim.declarations
    whole = fitted.transform(frame)
    day = frame["date"].iloc[len(frame) // 2]
    same_day = np.flatnonzero((frame["date"] == day).to_numpy())
    cuts = [0, len(frame) // 4, int(same_day[len(same_day) // 2]), len(frame)]
    state = fitted.new_state()
    parts = [fitted.transform(frame.iloc[a:b], state) for a, b in zip(cuts, cuts[1:],
                                                                        strict=False)]
    pd.testing.assert_frame_equal(pd.concat(parts), whole)


def test_later_rows_never_change_earlier_features(sim: SimulatedTrade,
                                                  fitted: TradeFeatureBuilder) -> None:
    frame = sim.declarations
    early = (frame["date"] < pd.Timestamp("2022-02-15")).to_numpy()
    pd.testing.assert_frame_equal(fitted.transform(frame[early]),
                                  fitted.transform(frame)[early])


def test_input_order_does_not_matter_and_late_rows_fail(sim: SimulatedTrade,
                                                        fitted: TradeFeatureBuilder) -> None:
    frame = sim.declarations.iloc[:800]
    shuffled = frame.sample(frac=1.0, random_state=0)
    pd.testing.assert_frame_equal(fitted.transform(shuffled).loc[frame.index],
                                  fitted.transform(frame))
    state = fitted.new_state()
    fitted.transform(frame.iloc[400:], state)
    with pytest.raises(LateDeclarationError, match="date order"):
        fitted.transform(frame.iloc[:10], state)


def test_builder_pickles_with_its_state(sim: SimulatedTrade,
                                        fitted: TradeFeatureBuilder) -> None:
    frame = sim.declarations.iloc[:1500]
    state = fitted.new_state()
    first = fitted.transform(frame.iloc[:1000], state)
    builder, copied = pickle.loads(pickle.dumps((fitted, state)))
    pd.testing.assert_frame_equal(builder.transform(frame.iloc[1000:], copied),
                                  fitted.transform(frame.iloc[1000:], state))
    assert len(first) == 1000
    assert not fitted.new_state().counts  # new states start empty


def test_mirror_gap_uses_complete_earlier_months(sim: SimulatedTrade,
                                                 fitted: TradeFeatureBuilder) -> None:
    features = fitted.transform(sim.declarations)
    months = sim.declarations["date"].dt.month
    assert features["mirror_value_gap"][months == 1].isna().all()  # no earlier month
    gap = features["mirror_value_gap"][months > 2].dropna()
    assert len(gap) and gap.median() == pytest.approx(1.0, abs=0.2)  # clean trade dominates
    ratio = features["mirror_unit_value_ratio"][months > 1].dropna()
    assert ratio.median() == pytest.approx(1.0, abs=0.3)


def test_raw_columns_builder_codes_training_values(sim: SimulatedTrade,
                                                   train_mask: np.ndarray) -> None:
    frame = sim.declarations
    raw = RawColumnsBuilder().fit(frame[train_mask])
    features = raw.transform(frame)
    assert list(features.columns) == raw.feature_names == [s.name for s in raw.specs]
    assert raw.new_state() is None and raw.categorical_features == []
    assert features.loc[train_mask, "importer_id"].notna().all()
    unseen = ~frame["importer_id"].isin(set(frame.loc[train_mask, "importer_id"]))
    assert features.loc[unseen.to_numpy(), "importer_id"].isna().all()
    assert (features["declared_value"] == frame["declared_value"]).all()


def test_scoring_continues_the_party_history_of_training() -> None:
    frame = simulate_trade(TradeSimulationConfig(declarations=3000, seed=9)).declarations
    frame = frame.sort_values("date", kind="stable")
    cut = frame["date"].quantile(0.8)
    train, later = frame[frame["date"] < cut], frame[frame["date"] >= cut]
    builder = TradeFeatureBuilder().fit(train)
    one_pass = builder.transform(frame)
    continued = builder.transform(later, builder.scoring_state())
    pd.testing.assert_frame_equal(continued, one_pass.loc[later.index])
    assert (continued["importer_distinct_hs6"] > 0).mean() > 0.5  # parties are not new
