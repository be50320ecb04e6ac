"""The transactions simulator: determinism, background realism and laundering shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from illicitflows.transactions.io import load_transactions
from illicitflows.transactions.patterns import read_patterns
from illicitflows.transactions.schema import COLUMNS, PAYMENT_FORMATS, USD_PER_UNIT
from illicitflows.transactions.simulate import (
    SIMULATION_STEPS,
    TYPOLOGIES,
    SimulatedTransactions,
    SimulationConfig,
    simulate_transactions,
    write_simulation,
)

SMALL = SimulationConfig(accounts=2_000, days=7, laundering_rate=0.005, seed=3)


@pytest.fixture(scope="module")
def sim() -> SimulatedTransactions:
    """About 200k transactions at the default laundering rate."""
    return simulate_transactions(SimulationConfig(accounts=20_000, days=10, seed=1))


def usd(frame: pd.DataFrame) -> pd.Series:
    return frame["amount_paid"] * frame["payment_currency"].map(USD_PER_UNIT)


def attempts_of(sim: SimulatedTransactions, typology: str) -> list[pd.DataFrame]:
    rows = sim.frame[sim.frame["typology"] == typology]
    return [group for _, group in rows.groupby("attempt_id")]


def sender(rows: pd.DataFrame) -> pd.Series:
    return rows["from_bank"] + "/" + rows["from_account"]


def receiver(rows: pd.DataFrame) -> pd.Series:
    return rows["to_bank"] + "/" + rows["to_account"]


def test_same_seed_same_frame_other_seed_other_frame() -> None:
    first = simulate_transactions(SMALL)
    pd.testing.assert_frame_equal(first.frame, simulate_transactions(SMALL).frame)
    pd.testing.assert_frame_equal(first.attempts, simulate_transactions(SMALL).attempts)
    other = simulate_transactions(SimulationConfig(accounts=2_000, days=7,
                                                   laundering_rate=0.005, seed=4))
    assert not first.frame[COLUMNS].equals(other.frame[COLUMNS])


def test_progress_is_called_once_per_step() -> None:
    labels: list[str] = []
    simulate_transactions(SMALL, progress=labels.append)
    assert len(labels) == SIMULATION_STEPS


def test_frame_types_and_order(sim: SimulatedTransactions) -> None:
    frame = sim.frame
    assert list(frame.columns) == [*COLUMNS, "typology", "attempt_id"]
    assert frame["timestamp"].is_monotonic_increasing
    assert (frame["timestamp"].dt.second == 0).all()
    assert frame["is_laundering"].dtype == np.int8
    assert frame["attempt_id"].dtype == np.int64
    for column in ("amount_paid", "amount_received"):
        assert pd.api.types.is_numeric_dtype(frame[column])
        assert (frame[column] > 0).all()
    fiat = frame["payment_currency"] != "Bitcoin"
    cents = frame.loc[fiat, "amount_paid"] * 100
    assert np.allclose(cents, cents.round(), atol=1e-6)
    assert set(frame["payment_format"]) == PAYMENT_FORMATS
    assert set(frame["payment_currency"]) <= set(USD_PER_UNIT)
    assert frame["from_account"].str.fullmatch(r"[0-9A-F]{9}").all()
    assert frame["from_bank"].str.fullmatch(r"\d{3}|\d{5}").all()
    assert frame["from_bank"].nunique() >= 200
    normal = frame["attempt_id"] < 0
    assert (frame.loc[normal, "typology"] == "").all()
    assert (frame.loc[~normal, "is_laundering"] == 1).all()


def test_laundering_share_near_config_and_every_typology_present(
        sim: SimulatedTransactions) -> None:
    share = sim.frame["is_laundering"].mean()
    assert 0.0005 < share < 0.002
    assert set(sim.frame["typology"]) - {""} == set(TYPOLOGIES)
    assert set(sim.attempts["typology"]) == set(TYPOLOGIES)
    assert sim.attempts["hard"].any() and not sim.attempts["hard"].all()
    assert sim.attempts["n_transactions"].sum() == sim.frame["is_laundering"].sum()


def test_default_config_has_every_typology() -> None:
    frame = simulate_transactions(SimulationConfig()).frame
    assert set(frame["typology"]) - {""} == set(TYPOLOGIES)
    assert 0.0005 < frame["is_laundering"].mean() < 0.002


def test_laundering_accounts_also_transact_normally(sim: SimulatedTransactions) -> None:
    frame = sim.frame
    launderers = set(sender(frame[frame["is_laundering"] == 1]))
    normal_senders = set(sender(frame[frame["is_laundering"] == 0]))
    assert len(launderers & normal_senders) > 0.5 * len(launderers)


def test_fan_in_and_fan_out_shapes(sim: SimulatedTransactions) -> None:
    for rows in attempts_of(sim, "FAN-IN"):
        assert receiver(rows).nunique() == 1
        assert sender(rows).nunique() == len(rows) >= 3
    for rows in attempts_of(sim, "FAN-OUT"):
        assert sender(rows).nunique() == 1
        assert receiver(rows).nunique() == len(rows) >= 3


def test_cycle_is_a_closed_directed_path(sim: SimulatedTransactions) -> None:
    for rows in attempts_of(sim, "CYCLE"):
        step = dict(zip(sender(rows), receiver(rows), strict=True))
        assert len(step) == len(rows) >= 3
        start = node = next(iter(step))
        for _ in range(len(rows)):
            node = step[node]
        assert node == start
        assert len(set(step.values())) == len(rows)


def test_scatter_gather_goes_through_intermediaries(sim: SimulatedTransactions) -> None:
    for rows in attempts_of(sim, "SCATTER-GATHER"):
        sources = set(sender(rows)) - set(receiver(rows))
        sinks = set(receiver(rows)) - set(sender(rows))
        middle = set(sender(rows)) & set(receiver(rows))
        assert len(sources) == 1 and len(sinks) == 1
        assert len(middle) == len(rows) // 2 >= 2
        for account in middle:
            arrived = rows.loc[receiver(rows) == account, "timestamp"].min()
            left = rows.loc[sender(rows) == account, "timestamp"].min()
            assert arrived <= left


def test_structuring_sits_just_under_the_threshold(sim: SimulatedTransactions) -> None:
    threshold = SimulationConfig().reporting_threshold_usd
    rows = sim.frame[sim.frame["typology"] == "STRUCTURING"]
    assert len(rows) >= 4
    assert usd(rows).between(0.7 * threshold, threshold, inclusive="left").all()
    assert rows["payment_format"].isin({"Cash", "Cheque"}).mean() > 0.5
    for group in attempts_of(sim, "STRUCTURING"):
        assert receiver(group).nunique() == 1


def test_pass_through_leaves_within_hours(sim: SimulatedTransactions) -> None:
    for rows in attempts_of(sim, "PASS-THROUGH"):
        hub = (set(sender(rows)) & set(receiver(rows))).pop()
        inflow = rows.loc[receiver(rows) == hub].sort_values("timestamp")
        outflow = rows.loc[sender(rows) == hub].sort_values("timestamp")
        assert len(inflow) == len(outflow) >= 2
        delay = outflow["timestamp"].to_numpy() - inflow["timestamp"].to_numpy()
        assert (delay >= pd.Timedelta(0)).all() and (delay <= pd.Timedelta(hours=24)).all()
        assert usd(outflow).sum() < usd(inflow).sum()  # less a cut


def test_received_amount_follows_exchange_rates(sim: SimulatedTransactions) -> None:
    frame = sim.frame
    same = frame["payment_currency"] == frame["receiving_currency"]
    assert (frame.loc[same, "amount_paid"] == frame.loc[same, "amount_received"]).all()
    cross = frame[~same]
    assert len(cross) > 100
    paid_usd = usd(cross)
    received_usd = cross["amount_received"] * cross["receiving_currency"].map(USD_PER_UNIT)
    assert np.allclose(paid_usd, received_usd, rtol=1e-3, atol=0.05)
    crypto = frame["payment_format"] == "Bitcoin"
    assert (frame.loc[crypto, "payment_currency"] == "Bitcoin").all()
    assert (frame.loc[crypto, "receiving_currency"] == "Bitcoin").all()


def test_self_transfers_are_reinvestment(sim: SimulatedTransactions) -> None:
    frame = sim.frame
    own = (sender(frame) == receiver(frame))
    assert 0.03 < own.mean() < 0.15
    assert (frame.loc[own, "payment_format"] == "Reinvestment").mean() > 0.99


def test_daily_and_weekly_rhythm(sim: SimulatedTransactions) -> None:
    stamps = sim.frame["timestamp"]
    hours = stamps.dt.hour
    assert hours.between(9, 16).sum() > 5 * hours.between(0, 5).sum()
    per_day = stamps.dt.normalize().value_counts()
    weekend = per_day[per_day.index.day_of_week >= 5]
    weekday = per_day[per_day.index.day_of_week < 5]
    assert weekend.mean() < 0.8 * weekday.mean()


def test_regular_counterparties_repeat(sim: SimulatedTransactions) -> None:
    frame = sim.frame[sim.frame["payment_format"] != "Reinvestment"]
    pairs = sender(frame) + ">" + receiver(frame)
    assert pairs.duplicated().mean() > 0.3


def test_amounts_overlap_between_classes(sim: SimulatedTransactions) -> None:
    amounts = usd(sim.frame)
    laundering = sim.frame["is_laundering"] == 1
    low, high = amounts[laundering].quantile([0.1, 0.9])
    normal = amounts[~laundering]
    assert normal.between(low, high).mean() > 0.3


def test_write_simulation_writes_ibm_csv_and_patterns(tmp_path: Path) -> None:
    sim = simulate_transactions(SMALL)
    paths = write_simulation(sim, tmp_path / "out")
    loaded = load_transactions(paths["transactions"]).frame
    pd.testing.assert_frame_equal(loaded, sim.frame[COLUMNS], check_dtype=False)
    patterns = read_patterns(paths["patterns"])
    assert len(patterns) == sim.frame["is_laundering"].sum()
    assert patterns["attempt_id"].nunique() == len(sim.attempts)


def test_day_steps_spread_attempts_over_weeks_and_write_amlsim(tmp_path: Path) -> None:
    config = SimulationConfig(accounts=3000, days=90, transactions_per_account_day=0.05,
                              laundering_rate=0.02, time_step="day", pattern_span_scale=24,
                              seed=4)
    sim = simulate_transactions(config)
    frame = sim.frame
    assert (frame["timestamp"] == frame["timestamp"].dt.normalize()).all()
    assert len(frame) < 0.1 * 3000 * 90  # scheduled payments thinned to the sparse volume
    spans = (sim.attempts["end"] - sim.attempts["start"]).dt.days
    assert spans.median() >= 3 and spans.max() >= 14  # days and weeks, not hours
    paths = write_simulation(sim, tmp_path / "amlsim", "amlsim")
    written = pd.read_csv(paths["transactions"])
    assert list(written.columns) == ["tran_id", "sourceNodeId", "targetNodeId", "value", "time"]
    assert written["time"].min() == 0 and written["time"].max() <= 89
    loaded = load_transactions(paths["transactions"], accounts=paths["accounts"])
    assert loaded.frame["from_bank"].eq("AMLSIM").all()  # banks, currencies, formats absent
    flagged = loaded.accounts["is_laundering"] == 1
    laundering_ends = set(frame.loc[frame["is_laundering"] == 1, "from_account"]) | set(
        frame.loc[frame["is_laundering"] == 1, "to_account"])
    assert flagged.sum() == len(laundering_ends)
    assert loaded.frame["is_laundering"].sum() >= frame["is_laundering"].sum()  # both ends


def test_time_step_is_checked() -> None:
    with pytest.raises(ValueError, match="time_step"):
        SimulationConfig(time_step="hour")
