"""Causal transaction features: causality, chunk parity, what each motif measures, and the
accounts' risk memory."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from illicitflows.transactions.features import (
    FeatureConfig,
    LateRecordError,
    TransactionFeatureBuilder,
)
from illicitflows.transactions.features.builder import canonical_order, time_order

START = pd.Timestamp("2022-09-01 08:00")


def edges(rows: list[tuple[str, str, float, float]], fmt: str = "Wire") -> pd.DataFrame:
    """Transactions from (sender, receiver, minutes after START, USD amount)."""
    return pd.DataFrame({
        "timestamp": [START + pd.Timedelta(minutes=m) for _, _, m, _ in rows],
        "from_bank": "001", "from_account": [s for s, _, _, _ in rows],
        "to_bank": "001", "to_account": [r for _, r, _, _ in rows],
        "amount_received": [a for *_, a in rows], "receiving_currency": "US Dollar",
        "amount_paid": [a for *_, a in rows], "payment_currency": "US Dollar",
        "payment_format": fmt,
    })


def random_transactions(n: int = 4000, accounts: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    minutes = np.sort(rng.integers(0, 6 * 24 * 60, n))
    frame = edges([(f"A{s}", f"A{r}", m, a) for s, r, m, a in zip(
        rng.integers(0, accounts, n), rng.integers(0, accounts, n), minutes,
        rng.lognormal(7, 1.5, n).round(2), strict=True)])
    frame["payment_currency"] = rng.choice(["US Dollar", "Euro", "Yen"], n)
    return frame


def build(frame: pd.DataFrame, **config: object) -> pd.DataFrame:
    builder = TransactionFeatureBuilder(FeatureConfig(**config)).fit(frame)
    return builder.transform(frame)


def test_appending_later_transactions_never_changes_earlier_features() -> None:
    frame = random_transactions()
    builder = TransactionFeatureBuilder().fit(frame)
    full = builder.transform(frame)
    early = builder.transform(frame.iloc[:2500])
    pd.testing.assert_frame_equal(early, full.iloc[:2500])


def test_chunk_by_chunk_with_history_equals_one_pass() -> None:
    frame = random_transactions()
    builder = TransactionFeatureBuilder().fit(frame)
    full = builder.transform(frame)
    state = builder.new_state()
    chunks = [builder.transform(frame.iloc[i:i + 100], state) for i in range(0, len(frame), 100)]
    pd.testing.assert_frame_equal(pd.concat(chunks), full)


def test_input_order_does_not_matter_even_among_ties() -> None:
    frame = random_transactions(n=500)
    builder = TransactionFeatureBuilder().fit(frame)
    shuffled = frame.sample(frac=1.0, random_state=1)
    a = builder.transform(frame)
    b = builder.transform(shuffled)
    pd.testing.assert_frame_equal(a.loc[b.index], b)


def day_steps(n: int = 3000, accounts: int = 200, days: int = 40, seed: int = 0) -> pd.DataFrame:
    """Transactions on whole days only (AMLSim-style steps): many share a timestamp."""
    frame = random_transactions(n=n, accounts=accounts, seed=seed)
    rng = np.random.default_rng(seed)
    frame["timestamp"] = START.normalize() + pd.to_timedelta(
        np.sort(rng.integers(0, days, n)), unit="D")
    return frame


def test_transfers_sharing_a_timestamp_are_simultaneous() -> None:
    # Same day: B forwards what A sent; neither sees the other, whatever the input order.
    day = [("A", "B", 0, 5000.0), ("B", "C", 0, 4900.0)]
    for rows in (day, day[::-1]):
        features = build(edges(rows + [("C", "D", 60, 4800.0)]))
        by_pair = features.set_index(edges(rows + [("C", "D", 60, 4800.0)])["to_account"])
        assert by_pair.loc["C", "pass_through_chain_depth"] == 0  # B -> C sees no A -> B
        assert np.isnan(by_pair.loc["C", "sender_hours_since_previous"])
        assert by_pair.loc["C", "sender_in_count_1h"] == 0
        assert by_pair.loc["C", "sender_out_count_1h"] == 1  # itself
        assert by_pair.loc["D", "pass_through_chain_depth"] == 1  # a later hour sees B -> C


def test_shuffling_transfers_within_a_timestamp_keeps_every_feature() -> None:
    frame = day_steps()
    builder = with_memory(frame, level=0.8)
    one_pass = builder.transform(frame)
    assert one_pass["sender_prior_risk_alerts"].max() > 0
    shuffled = frame.sample(frac=1.0, random_state=3).sort_values("timestamp", kind="stable")
    pd.testing.assert_frame_equal(builder.transform(shuffled).loc[frame.index], one_pass)
    ordered = frame.iloc[canonical_order(frame)]
    base = TransactionFeatureBuilder().fit(frame)
    state = base.new_state()  # chunks cut inside days, as training and the service may
    chunks = [base.transform(ordered.iloc[i:i + 77], state) for i in range(0, len(ordered), 77)]
    pd.testing.assert_frame_equal(pd.concat(chunks).loc[frame.index], base.transform(frame))
    state = builder.new_state()  # the memory: chunks of whole days
    days = [builder.transform(day, state) for _, day in ordered.groupby("timestamp")]
    pd.testing.assert_frame_equal(pd.concat(days).loc[frame.index], one_pass)
    memory = builder.memory_features(time_order(shuffled), AmountScorer().score(
        builder.transform(shuffled)), stage=0)
    pd.testing.assert_frame_equal(memory.loc[frame.index],
                                  one_pass[memory.columns.tolist()].astype(np.float32))


def test_no_calendar_features_shifting_the_calendar_changes_nothing() -> None:
    """A model learns the calendar of its training weeks from weekday-like features; none is
    computed: moving the data by days that change every weekday keeps every feature."""
    frame = random_transactions(n=800)
    builder = TransactionFeatureBuilder().fit(frame)
    shifted = frame.assign(timestamp=frame["timestamp"] + pd.Timedelta(days=3))
    pd.testing.assert_frame_equal(builder.transform(shifted), builder.transform(frame))
    assert not {"weekday", "day_of_week", "day", "month"} & set(builder.feature_names)


def test_late_record_is_refused_with_row_and_field() -> None:
    frame = random_transactions(n=200)
    builder = TransactionFeatureBuilder().fit(frame)
    state = builder.new_state()
    builder.transform(frame.iloc[100:], state)
    with pytest.raises(LateRecordError, match="field timestamp"):
        builder.transform(frame.iloc[:100], state)


def test_fan_in_degree_counts_distinct_senders_inside_the_window() -> None:
    rows = [(f"S{i}", "HUB", i * 10.0, 900.0) for i in range(12)]
    rows += [("S0", "HUB", 130.0, 900.0), ("LATE", "HUB", 60 * 30.0, 900.0)]
    features = build(edges(rows))
    assert features["receiver_in_degree_24h"].tolist()[:13] == [*range(1, 13), 12]
    assert features["receiver_in_count_24h"].iloc[12] == 13
    assert features["receiver_in_degree_1h"].iloc[11] == 7  # minutes 50..110: start included
    assert features["receiver_in_degree_24h"].iloc[13] == 1  # 30 h later: all others expired
    assert features["pair_prior_transfers"].iloc[12] == 1
    assert features["pair_prior_transfers"].iloc[0] == 0


def test_cycle_is_detected_on_the_closing_edge_only() -> None:
    rows = [("A", "B", 0, 5000.0), ("B", "C", 60, 4900.0), ("C", "D", 120, 4800.0),
            ("D", "A", 180, 4700.0)]
    features = build(edges(rows))
    assert features["cycle_length"].tolist() == [0, 0, 0, 4]


def test_cycle_needs_increasing_times_and_the_motif_window() -> None:
    out_of_order = [("B", "C", 0, 10.0), ("A", "B", 60, 10.0), ("C", "A", 120, 10.0)]
    assert build(edges(out_of_order))["cycle_length"].tolist() == [0, 0, 0]
    slow = [("A", "B", 0, 10.0), ("B", "C", 60, 10.0), ("C", "A", 60 * 80, 10.0)]
    assert build(edges(slow), motif_window_h=72)["cycle_length"].iloc[-1] == 0
    assert build(edges(slow), motif_window_h=96)["cycle_length"].iloc[-1] == 3


def test_cycles_longer_than_the_limit_are_not_reported() -> None:
    hops = [(f"N{i}", f"N{i + 1}", i * 10.0, 100.0) for i in range(6)] + [("N6", "N0", 70, 1.0)]
    assert build(edges(hops), max_cycle_length=7)["cycle_length"].iloc[-1] == 7
    assert build(edges(hops), max_cycle_length=6)["cycle_length"].iloc[-1] == 0


def test_scatter_gather_counts_other_intermediaries_reaching_the_sink() -> None:
    split = [("SRC", f"M{i}", i, 3000.0) for i in range(5)]
    gather = [(f"M{i}", "SINK", 100 + i, 2900.0) for i in range(5)]
    features = build(edges(split + gather))
    assert features["scatter_gather_paths"].tolist()[5:] == [0, 1, 2, 3, 4]


def test_structuring_deposits_just_below_the_threshold_are_counted() -> None:
    rows = [(f"P{i}", "MULE", i * 30.0, 9000.0 + 100 * i) for i in range(6)]
    rows.append(("P9", "MULE", 200, 12_000.0))
    features = build(edges(rows, fmt="Cash"))
    assert features["just_below_threshold"].tolist() == [1.0] * 6 + [0.0]
    assert features["receiver_in_near_threshold_24h"].tolist() == [1, 2, 3, 4, 5, 6, 6]


def test_pass_through_chain_follows_funds_that_leave_soon_after_arriving() -> None:
    rows = [("A", "B", 0, 10_000.0), ("B", "C", 30, 9_800.0), ("C", "D", 90, 9_500.0),
            ("D", "E", 120, 20_000.0)]
    features = build(edges(rows))
    assert features["pass_through_chain_depth"].tolist() == [0, 1, 2, 0]
    assert features["pass_through_chain_lag_hours"].iloc[1] == pytest.approx(0.5)
    assert features["sender_pass_through_ratio_1h"].iloc[1] == pytest.approx(0.98)
    assert np.isnan(features["pass_through_chain_lag_hours"].iloc[3])


def test_amounts_are_compared_in_usd_with_rates_implied_by_the_data() -> None:
    rows = edges([("A", "B", i, 100.0) for i in range(10)])
    rows["receiving_currency"] = "Euro"
    rows["amount_received"] = 80.0  # the data says 1 EUR = 1.25 USD
    rows.loc[9, ["payment_currency", "amount_paid"]] = ["Euro", 100.0]
    features = build(rows)
    assert features["amount_usd"].iloc[0] == pytest.approx(100.0)
    assert features["amount_usd"].iloc[9] == pytest.approx(125.0)
    assert features["currency_mismatch"].iloc[0] == 1.0


def test_every_feature_has_a_family_and_a_sentence() -> None:
    builder = TransactionFeatureBuilder()
    frame = random_transactions(n=300)
    features = builder.fit(frame).transform(frame)
    assert list(features.columns) == builder.feature_names
    assert len(set(builder.feature_names)) == len(builder.feature_names)
    for spec in builder.specs:
        assert spec.family and spec.description
        sentence = spec.reason(float(features[spec.name].iloc[-1]))
        assert sentence and "{" not in sentence


# --- risk memory: accounts remember the first-stage scores of their earlier transfers ---


class AmountScorer:
    """A first-stage model for tests: larger transfers are riskier (a function of features)."""

    def score(self, features: pd.DataFrame) -> np.ndarray:
        usd = features["amount_usd"].to_numpy()
        return usd / (usd + 1000.0)


def with_memory(frame: pd.DataFrame, level: float = 0.5, **config: object
                ) -> TransactionFeatureBuilder:
    builder = TransactionFeatureBuilder(FeatureConfig(**config)).fit(frame)
    return builder.attach_memory(AmountScorer(), level)


def test_memory_reads_only_earlier_transfers_of_either_role() -> None:
    frame = edges([("A", "B", 0, 3000.0), ("B", "C", 10, 10.0), ("C", "D", 20, 1000.0),
                   ("A", "E", 30, 1.0)])
    features = with_memory(frame).transform(frame)
    assert np.isnan(features["sender_prior_risk_max"].iloc[0])
    assert features["sender_prior_risk_max"].iloc[1] == pytest.approx(0.75)  # B received 3000
    assert features["sender_prior_risk_alerts"].iloc[1] == 1.0
    assert features["receiver_prior_risk_max"].iloc[1] == pytest.approx(np.nan, nan_ok=True)
    assert features["sender_prior_risk_max"].iloc[2] == pytest.approx(10 / 1010)
    assert features["sender_prior_risk_alerts"].iloc[2] == 0.0
    assert features["sender_prior_risk_max"].iloc[3] == pytest.approx(0.75)  # A sent 3000


def test_memory_summarises_scores_by_direction_recency_and_alerts() -> None:
    # B receives 3000 (0.75) at 0 min, sends 1000 (0.5) at 60 min, then sends again at 24.5 h.
    frame = edges([("A", "B", 0, 3000.0), ("B", "C", 60, 1000.0), ("B", "D", 24 * 60 + 30, 1.0)])
    last = with_memory(frame, level=0.6).transform(frame).iloc[-1]
    assert last["sender_prior_risk_max_received"] == pytest.approx(0.75)
    assert last["sender_prior_risk_max_sent"] == pytest.approx(0.5)
    assert last["sender_prior_risk_sum"] == pytest.approx(1.25)
    assert last["sender_prior_risk_mean"] == pytest.approx(0.625)
    assert last["sender_prior_risk_max_24h"] == pytest.approx(0.5)  # the 0.75 is 24.5 h old
    assert last["sender_hours_since_alert"] == pytest.approx(24.5)


def test_memory_forgets_transfers_older_than_its_window() -> None:
    frame = edges([("A", "B", 0, 3000.0), ("B", "C", 61, 10.0)])
    features = with_memory(frame, memory_window_h=1).transform(frame)
    assert np.isnan(features["sender_prior_risk_max"].iloc[1])


def test_memory_keeps_the_latest_transfers_only() -> None:
    frame = edges([("A", "B", 0, 9000.0)] + [("A", "B", 1 + i, 1.0) for i in range(3)]
                  + [("A", "C", 10, 1.0)])
    features = with_memory(frame, memory_depth=3).transform(frame)
    assert features["sender_prior_risk_max"].iloc[-1] == pytest.approx(1 / 1001)


def test_memory_is_causal_and_chunk_invariant() -> None:
    frame = random_transactions()
    builder = with_memory(frame, level=0.8)
    full = builder.transform(frame)
    assert full["sender_prior_risk_alerts"].max() > 0
    pd.testing.assert_frame_equal(builder.transform(frame.iloc[:2500]), full.iloc[:2500])
    state = builder.new_state()
    chunks = [builder.transform(frame.iloc[i:i + 100], state) for i in range(0, len(frame), 100)]
    pd.testing.assert_frame_equal(pd.concat(chunks), full)


def test_given_scores_give_the_same_memory_as_the_attached_model() -> None:
    frame = random_transactions(n=1000).sample(frac=1.0, random_state=0)  # input order differs
    builder = with_memory(frame)
    full = builder.transform(frame)
    scores = AmountScorer().score(full)
    memory = builder.memory_features(time_order(frame), scores, stage=0)
    assert (memory.dtypes == np.float32).all()  # as the models read them
    pd.testing.assert_frame_equal(memory, full[memory.columns.tolist()].astype(np.float32))
    assert builder.feature_names[-len(memory.columns):] == memory.columns.tolist()


class EchoScorer:
    """A round-2 model for tests: the sender's round-1 memory is its score."""

    def score(self, features: pd.DataFrame) -> np.ndarray:
        return features["sender_prior_risk_max"].fillna(0.0).to_numpy()


def with_two_rounds(frame: pd.DataFrame, **config: object) -> TransactionFeatureBuilder:
    builder = with_memory(frame, memory_rounds=2, **config)
    return builder.attach_memory(EchoScorer(), 0.5)


def test_the_second_round_reaches_one_hop_further() -> None:
    # A -> B (risky), then B -> C: B remembers it; then C -> D: C remembers round-2 B -> C.
    frame = edges([("A", "B", 0, 3000.0), ("B", "C", 10, 10.0), ("C", "D", 20, 10.0)])
    features = with_two_rounds(frame).transform(frame)
    assert features["sender_prior_risk_max"].iloc[2] == pytest.approx(10 / 1010)  # 10 USD
    assert features["sender_prior_risk_max_r2"].iloc[2] == pytest.approx(0.75)
    assert features["sender_prior_risk_alerts_r2"].iloc[2] == 1.0
    assert features["sender_prior_risk_max_r2"].iloc[1] == 0.0  # A had no history


def test_two_rounds_are_causal_and_chunk_invariant() -> None:
    frame = random_transactions()
    builder = with_two_rounds(frame)
    full = builder.transform(frame)
    assert full["receiver_prior_risk_alerts_r2"].max() > 0
    state = builder.new_state()
    chunks = [builder.transform(frame.iloc[i:i + 100], state) for i in range(0, len(frame), 100)]
    pd.testing.assert_frame_equal(pd.concat(chunks), full)
    second = [name for name in builder.feature_names if name.endswith("_r2")]
    assert builder.round_inputs(1) == builder.feature_names[:-len(second)]


def test_given_scores_give_each_rounds_memory() -> None:
    frame = random_transactions(n=1000)
    builder = with_two_rounds(frame)
    full = builder.transform(frame)
    second = builder.memory_features(time_order(frame), EchoScorer().score(full), stage=1)
    pd.testing.assert_frame_equal(second, full[second.columns.tolist()].astype(np.float32))


def test_no_more_rounds_than_configured() -> None:
    frame = random_transactions(n=100)
    with pytest.raises(ValueError, match="memory_rounds is 1"):
        with_memory(frame).attach_memory(AmountScorer(), 0.5)
