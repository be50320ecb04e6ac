"""Real traffic: records out of order within the allowed lateness, records too late or from
the future, retried requests, concurrent clients scored in micro-batches, and restarts after
all of these."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from illicitflows.serving.arrival import Arrival, feature_times
from illicitflows.serving.engine import InputError, TransactionScorer
from illicitflows.serving.history import HistoryStore

LATENESS = pd.Timedelta(minutes=10)


def scorer(tmp_path, detector, model, arrival: Arrival | None = None,
           name: str = "h") -> TransactionScorer:
    return TransactionScorer(detector, model,
                             HistoryStore(f"sqlite:///{tmp_path / name}.db", "transactions"),
                             arrival)


def nothing_logged(_decisions) -> None:
    """A log that keeps nothing (the engine's tests check the log itself)."""


@pytest.fixture
def identified(api_records):
    """API records of a frame's rows with ids named after their rows."""
    def records(frame: pd.DataFrame) -> list[dict]:
        return [dict(record, id=f"tx-{row}")
                for row, record in zip(frame.index, api_records(frame), strict=True)]
    return records


def arrival_order(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The records as many channels deliver them: each one delayed by up to 5 minutes, so
    neighbours in time arrive in any order but none is more than 5 minutes late."""
    delay = np.random.default_rng(seed).integers(0, 300, len(frame))
    arrives = frame["timestamp"] + pd.to_timedelta(delay, unit="s")
    return frame.iloc[np.argsort(arrives.to_numpy(), kind="stable")]


def test_records_within_the_lateness_are_scored_at_the_clock_and_a_restart_sees_the_same(
        tmp_path, transactions, identified, tx_detector, tx_model) -> None:
    arrived = arrival_order(transactions.iloc[:400])
    assert not arrived["timestamp"].is_monotonic_increasing
    records = identified(arrived)
    engine = scorer(tmp_path, tx_detector, tx_model)
    scores = [engine.score([record], nothing_logged).decisions[0].score
              for record in records[:300]]
    # the definition: the records in arrival order, each at the running maximum of the times
    at_clock = arrived.assign(timestamp=feature_times(arrived["timestamp"], None))
    expected = tx_detector.score_features(tx_detector.builder.transform(at_clock))
    np.testing.assert_allclose(scores, expected[:300], rtol=0, atol=1e-9)
    # the history keeps the true times and the arrival order; a restart rebuilds the same state
    stored = engine.store.load()
    assert stored["timestamp"].tolist() == [r["timestamp"] for r in records[:300]]
    restarted = scorer(tmp_path, tx_detector, tx_model)
    assert restarted.clock == engine.clock
    rest = [restarted.score([record], nothing_logged).decisions[0].score
            for record in records[300:]]
    np.testing.assert_allclose(rest, expected[300:], rtol=0, atol=1e-9)


def test_a_request_is_taken_in_time_order_and_answered_in_its_own(
        tmp_path, transactions, identified, tx_detector, tx_model) -> None:
    distinct = transactions.iloc[:300].drop_duplicates("timestamp")  # ties keep their order
    records = identified(distinct)
    reversed_batch = scorer(tmp_path, tx_detector, tx_model, name="r").score(
        records[::-1], nothing_logged)
    in_order = scorer(tmp_path, tx_detector, tx_model, name="o").score(records, nothing_logged)
    assert [d.record_id for d in reversed_batch.decisions] == [r["id"] for r in records[::-1]]
    np.testing.assert_allclose([d.score for d in reversed_batch.decisions][::-1],
                               [d.score for d in in_order.decisions], rtol=0, atol=1e-12)


def test_a_record_beyond_the_lateness_is_refused_with_its_index_field_and_limit(
        tmp_path, transactions, identified, tx_detector, tx_model) -> None:
    records = identified(transactions.iloc[:300])
    engine = scorer(tmp_path, tx_detector, tx_model)
    engine.score(records[100:200], nothing_logged)
    newest = pd.Timestamp(records[199]["timestamp"])
    late = dict(records[250], timestamp=(newest - LATENESS - pd.Timedelta(seconds=1))
                .isoformat())
    just_in_time = dict(records[251], timestamp=(newest - LATENESS).isoformat())
    with pytest.raises(InputError) as caught:
        engine.score([records[200], late, just_in_time], nothing_logged)
    assert [(i["index"], i["field"]) for i in caught.value.issues] == [(1, "timestamp")]
    assert "allowed lateness of 10 min" in caught.value.issues[0]["reason"]
    assert len(engine.store.load()) == 100  # nothing of the refused request was taken
    taken = engine.score([records[200], just_in_time], nothing_logged)
    assert len(taken.decisions) == 2


@pytest.mark.parametrize("stamp", ["2200-01-01T00:00:00", "2022-09-01T12:06:00"])
def test_a_record_from_the_future_is_refused_and_does_not_move_the_clock(
        tmp_path, transactions, identified, tx_detector, tx_model, stamp) -> None:
    """The server's clock is 12:00 on the first day of the data here: 2200 and 12:06 are
    both more than the 5 minutes of clock skew ahead of it."""
    records = identified(transactions.iloc[:200])
    arrival = Arrival(now=lambda: pd.Timestamp("2022-09-01T12:00:00"))
    engine = scorer(tmp_path, tx_detector, tx_model, arrival)
    engine.score(records[:50], nothing_logged)
    with pytest.raises(InputError) as caught:
        engine.score([records[50], dict(records[51], timestamp=stamp)], nothing_logged)
    assert [(i["index"], i["field"]) for i in caught.value.issues] == [(1, "timestamp")]
    assert "in the future" in caught.value.issues[0]["reason"]
    assert engine.score(records[50:60], nothing_logged).decisions  # real records go on


def test_back_fills_turn_the_clock_skew_check_off(tmp_path, transactions, identified,
                                                  tx_detector, tx_model) -> None:
    records = identified(transactions.iloc[:20])
    arrival = Arrival(clock_skew=None, now=lambda: pd.Timestamp("2000-01-01"))
    assert len(scorer(tmp_path, tx_detector, tx_model, arrival).score(
        records, nothing_logged).decisions) == 20
