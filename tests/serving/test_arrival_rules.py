"""Arrival rules beyond the clock: retries of records older than the lateness and the rebuilt
history, lateness and clock skew in whole days for day-stamped records, and a rebuild read in
chunks."""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from illicitflows.ids import uuid7_texts
from illicitflows.serving.arrival import Arrival
from illicitflows.serving.engine import (
    ConflictError,
    InputError,
    ModelRef,
    TradeScorer,
    TransactionScorer,
)
from illicitflows.serving.history import HistoryStore
from illicitflows.serving.runtime import Runtime, Settings

DAY = pd.Timedelta(days=1)


def runtime_at(tmp_path, arrival: Arrival | None = None) -> Runtime:
    return Runtime(Settings(history_url=f"sqlite:///{tmp_path / 'history.db'}",
                            audit_url=f"sqlite:///{tmp_path / 'audit.db'}",
                            keys_url=f"sqlite:///{tmp_path / 'keys.db'}",
                            audit_writer="inline", arrival=arrival or Arrival()))


def identified(api_records, frame: pd.DataFrame) -> list[dict]:
    return [dict(record, id=f"tx-{row}")
            for row, record in zip(frame.index, api_records(frame), strict=True)]


def test_a_retry_older_than_the_lateness_and_the_rebuilt_history_gets_its_decision(
        tmp_path, transactions, api_records, tx_detector, tx_model) -> None:
    start = transactions["timestamp"].min()
    old = identified(api_records, transactions.iloc[:30])
    recent = identified(api_records,
                        transactions[transactions["timestamp"] >= start + 8 * DAY].iloc[:30])
    runtime = runtime_at(tmp_path)
    engine = runtime.add_scorer(tx_detector, tx_model)
    first = engine.score(old, runtime.request_log(), request_id="old")
    engine.score(recent, runtime.request_log(), request_id="recent")
    runtime.close()
    # after a restart the scorer holds the last 7 days only: the old ids are in the store
    again = runtime_at(tmp_path)
    restarted = again.add_scorer(tx_detector, tx_model)
    assert not set(restarted.decided).intersection(r["id"] for r in old)
    retried = restarted.score(old[5:15], again.request_log(), request_id="retry")
    assert all(d.repeat for d in retried.decisions)
    assert [(d.decision_id, d.score, d.explanation) for d in retried.decisions] == [
        (d.decision_id, d.score, d.explanation) for d in first.decisions[5:15]]
    changed = dict(old[3], amount_paid=old[3]["amount_paid"] + 1)
    with pytest.raises(ConflictError) as conflict:
        restarted.score([changed], again.request_log(), request_id="changed")
    assert [(i["index"], i["field"]) for i in conflict.value.issues] == [(0, "id")]
    unknown = dict(old[3], id="never-seen")  # as old, but never decided: too late
    with pytest.raises(InputError) as late:
        restarted.score([unknown], again.request_log(), request_id="late")
    assert "too late" in late.value.issues[0]["reason"]
    logged = again.audit.decisions_after("transactions", 0, 10_000)
    assert len(logged) == 60  # the retry was not logged again
    again.close()


@pytest.fixture
def trade_records(declarations) -> list[dict]:
    tail = declarations.tail(40).drop(columns=["fraud", "typology", "revenue"])
    return json.loads(tail.to_json(orient="records", date_format="iso"))


def test_declarations_follow_day_rules_for_lateness_and_clock_skew(
        tmp_path, trade_records, trade_detector) -> None:
    newest = max(pd.Timestamp(r["date"]) for r in trade_records)
    arrival = Arrival(now=lambda: newest + pd.Timedelta(hours=23))
    runtime = runtime_at(tmp_path, arrival)
    engine = runtime.add_scorer(trade_detector, ModelRef("illicitflows-trade", "1", "run-1"))
    assert isinstance(engine, TradeScorer) and engine.arrival.in_days
    engine.score(trade_records, runtime.request_log())

    def dated(name: str, day: pd.Timestamp) -> dict:
        return dict(trade_records[0], declaration_id=name, date=day.date().isoformat())

    yesterday = dated("yesterday", newest - DAY)
    # a rule in seconds would refuse yesterday's declaration: the day rule takes it
    assert Arrival().late(pd.Series([newest - DAY]), newest).all()
    accepted = engine.score([yesterday, dated("three-days", newest - 3 * DAY)],
                            runtime.request_log())
    assert [d.repeat for d in accepted.decisions] == [False, False]
    with pytest.raises(InputError) as late:
        engine.score([dated("ok", newest), dated("four-days", newest - 4 * DAY)],
                     runtime.request_log())
    assert [(i["index"], i["field"]) for i in late.value.issues] == [(1, "date")]
    assert "allowed lateness of 3 days" in late.value.issues[0]["reason"]
    # the server's date is ``newest``: today's and tomorrow's dates (a zone ahead) are taken
    taken = engine.score([dated("today", newest), dated("tomorrow", newest + DAY)],
                         runtime.request_log())
    assert len(taken.decisions) == 2
    with pytest.raises(InputError) as future:
        engine.score([dated("after-tomorrow", newest + 2 * DAY)], runtime.request_log())
    assert "in the future: more than 1 day" in future.value.issues[0]["reason"]
    runtime.close()


def test_transactions_keep_seconds_unless_their_feed_is_day_stamped(
        tmp_path, transactions, api_records, tx_detector, tx_model, memory_log) -> None:
    store = HistoryStore(f"sqlite:///{tmp_path / 'h.db'}", "transactions")
    minutes = TransactionScorer(tx_detector, tx_model, store)
    assert tx_detector.builder.time_profile_.resolution_s < 86_400
    assert not minutes.arrival.in_days
    daily = copy.copy(tx_detector)
    daily.builder = copy.copy(tx_detector.builder)
    daily.builder.time_profile_ = dataclasses.replace(tx_detector.builder.time_profile_,
                                                      resolution_s=86_400)
    engine = TransactionScorer(daily, tx_model,
                               HistoryStore(f"sqlite:///{tmp_path / 'd.db'}", "transactions"),
                               Arrival(clock_skew=None))
    assert engine.arrival.in_days
    records = identified(api_records, transactions.iloc[:20])
    engine.score(records[:10], memory_log())
    newest = pd.Timestamp(records[9]["timestamp"]).floor("D")
    day_late = dict(records[10], timestamp=(newest - 2 * DAY).isoformat())
    assert len(engine.score([day_late], memory_log()).decisions) == 1
    with pytest.raises(InputError) as late:
        engine.score([dict(records[11], timestamp=(newest - 4 * DAY).isoformat())],
                     memory_log())
    assert "3 days" in late.value.issues[0]["reason"]


def test_a_rebuild_in_chunks_gives_the_state_of_one_pass(
        tmp_path, transactions, api_records, tx_detector, tx_model, memory_log) -> None:
    """Out-of-order records, an id stored twice (in a later chunk than the first) and a row
    that no longer validates: a rebuild reading 7 rows at a time takes the same rows, skips
    the same ones, and scores what comes next exactly as one pass does."""
    frame = transactions.iloc[:1200]
    delay = np.random.default_rng(3).integers(0, 300, len(frame))
    arrived = frame.iloc[np.argsort((frame["timestamp"]
                                     + pd.to_timedelta(delay, unit="s")).to_numpy(),
                                    kind="stable")]
    records = identified(api_records, arrived)
    url = f"sqlite:///{tmp_path / 'h.db'}"
    engine = TransactionScorer(tx_detector, tx_model, HistoryStore(url, "transactions"))
    for start in range(0, 1100, 100):
        engine.score(records[start:start + 100], memory_log())
    stored = engine.store.load()
    first = stored.iloc[3]  # an old service stored a retry of it a second time, much later
    engine.store.append([first["_record"]], [first["id"]], uuid7_texts(1),
                        [first["timestamp"]], [first["_score"]], [first["_flagged"]])
    bad = json.loads(stored["_record"].iloc[-1])
    bad.update(id="bad", amount_paid=-1)
    engine.store.append([json.dumps(bad)], ["bad"], uuid7_texts(1), [bad["timestamp"]],
                        [0.0], [False])
    one = TransactionScorer(tx_detector, tx_model, HistoryStore(url, "transactions"),
                            chunk_rows=100_000)
    chunked = TransactionScorer(tx_detector, tx_model, HistoryStore(url, "transactions"),
                                chunk_rows=7)
    assert len(one.skipped) == 2 and chunked.skipped == one.skipped
    assert "field id: duplicate id" in one.skipped[0]
    assert chunked.clock == one.clock and chunked.decided == one.decided
    assert chunked.flagged.edges == one.flagged.edges
    assert chunked.state.last_time == one.state.last_time
    after_one = one.score(records[1100:], memory_log()).decisions
    after_chunked = chunked.score(records[1100:], memory_log()).decisions
    np.testing.assert_allclose([d.score for d in after_chunked], [d.score for d in after_one],
                               rtol=0, atol=1e-12)
    assert [d.explanation for d in after_chunked] == [d.explanation for d in after_one]
