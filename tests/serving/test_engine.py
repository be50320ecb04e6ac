"""The scoring engine without HTTP: parity, explanations, roll-ups, networks, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from illicitflows.serving.engine import HistoryWriteError, InputError, TransactionScorer
from illicitflows.serving.history import HistoryStore


def scorer(tmp_path, detector, model, name: str = "h") -> TransactionScorer:
    return TransactionScorer(detector, model, HistoryStore(f"sqlite:///{tmp_path / name}.db",
                                                           "transactions"))


def test_streaming_in_chunks_of_100_equals_one_request_and_offline(
        tmp_path, transactions, api_records, tx_detector, tx_model, memory_log) -> None:
    part = transactions.iloc[:3000]
    records = api_records(part)
    log = memory_log()
    one = scorer(tmp_path, tx_detector, tx_model, "one").score(records, log)
    stream = scorer(tmp_path, tx_detector, tx_model, "stream")
    logs = [memory_log() for _ in range(30)]
    chunks = [stream.score(records[i:i + 100], logs[i // 100]) for i in range(0, 3000, 100)]
    streamed = np.array([d.score for c in chunks for d in c.decisions])
    single = np.array([d.score for d in one.decisions])
    offline = tx_detector.score(part)["score"].to_numpy()
    np.testing.assert_allclose(streamed, single, rtol=0, atol=1e-9)
    np.testing.assert_allclose(single, offline, rtol=0, atol=1e-9)
    assert len(log.decision_ids) + sum(len(chunk.decision_ids) for chunk in logs) == 6000


def test_restart_rebuilds_history_and_keeps_parity(tmp_path, transactions, api_records, tx_detector,
                                                   tx_model, memory_log) -> None:
    records = api_records(transactions.iloc[:2000])
    first = scorer(tmp_path, tx_detector, tx_model)
    first.score(records[:1500], memory_log())
    after_restart = scorer(tmp_path, tx_detector, tx_model)  # same store: replays the history
    tail = after_restart.score(records[1500:], memory_log())
    offline = tx_detector.score(transactions.iloc[:2000])["score"].to_numpy()[1500:]
    np.testing.assert_allclose([d.score for d in tail.decisions], offline, atol=1e-9)


def test_flagged_records_carry_exact_additive_reasons(
        tmp_path, transactions, api_records, tx_detector, tx_model, memory_log) -> None:
    batch = scorer(tmp_path, tx_detector, tx_model).score(api_records(transactions),
                                                          memory_log())
    flagged = [d for d in batch.decisions if d.flagged]
    assert flagged, "the small detector should flag something"
    assert all(d.explanation is None for d in batch.decisions if not d.flagged)
    features = tx_detector.builder.transform(transactions)
    margin = tx_detector.model.booster.predict(features, raw_score=True)
    index = {str(i): n for n, i in enumerate(pd.Series([d.record_id for d in batch.decisions]))}
    for d in flagged[:50]:
        total = d.explanation.base_value + sum(d.explanation.contributions.values())
        assert total == pytest.approx(margin[index[d.record_id]], abs=1e-6)
        assert d.explanation.reasons and d.explanation.reasons[0].contribution > 0
        assert d.explanation.reasons[0].sentence
    assert batch.rollups and batch.rollups[0]["max_score"] >= batch.rollups[-1]["max_score"]
    assert batch.networks and all(n["accounts"] for n in batch.networks)


def test_bad_records_name_index_field_and_reason(tmp_path, transactions, api_records, tx_detector,
                                                 tx_model, memory_log) -> None:
    records = api_records(transactions.iloc[:3])
    records[1]["amount_paid"] = -5
    records[2]["timestamp"] = "not a time"
    records[0]["colour"] = "red"
    with pytest.raises(InputError) as caught:
        scorer(tmp_path, tx_detector, tx_model).score(records, memory_log())
    found = {(i["index"], i["field"], i["reason"]) for i in caught.value.issues}
    assert found == {(0, "colour", "unknown field"), (1, "amount_paid", "negative value"),
                     (2, "timestamp", "unparseable timestamp")}


def failing(message: str):
    """A stand-in for a history store method: it fails with ``OSError(message)``."""
    def fail(*_: object) -> None:
        raise OSError(message)

    return fail


@pytest.mark.parametrize("when", ["attaching", "committing"])
def test_failed_audit_write_leaves_no_trace(tmp_path, transactions, api_records, tx_detector,
                                            tx_model, memory_log, when) -> None:
    # the first 1,000 transfers hold flagged ones, so the flagged-edge graph has edges to keep
    records = api_records(transactions.iloc[:1200])
    engine = scorer(tmp_path, tx_detector, tx_model)
    engine.score(records[:1000], memory_log())
    with pytest.raises(OSError):
        engine.score(records[1000:], memory_log(fail=when))
    assert len(engine.store.load()) == 1000
    fresh = scorer(tmp_path, tx_detector, tx_model)  # rebuilt from the same history
    assert engine.flagged.edges and engine.flagged.edges == fresh.flagged.edges
    again = engine.score(records[1000:], memory_log())
    offline = tx_detector.score(transactions.iloc[:1200])["score"].to_numpy()[1000:]
    np.testing.assert_allclose([d.score for d in again.decisions], offline, atol=1e-9)


def test_history_roll_ups_and_answer_are_built_while_the_log_writes(
        tmp_path, transactions, api_records, tx_detector, tx_model, memory_log) -> None:
    engine = scorer(tmp_path, tx_detector, tx_model)
    log = memory_log()
    append = engine.store.append
    engine.store.append = lambda *args: log.events.append("history") or append(*args)

    def render(batch) -> bytes:
        log.events.append("rendered")
        return f"{len(batch.decisions)} decisions".encode()

    batch = engine.score(api_records(transactions.iloc[:50]), log, render=render)
    assert log.events == ["begin 50", "texts", "attach 50", "history", "rendered", "commit"]
    assert batch.rendered == b"50 decisions"


def test_a_failed_history_write_says_whether_the_decisions_were_logged(
        tmp_path, transactions, api_records, tx_detector, tx_model, memory_log) -> None:
    engine = scorer(tmp_path, tx_detector, tx_model)
    engine.store.append = failing("disk full")
    records = api_records(transactions.iloc[:20])
    with pytest.raises(HistoryWriteError, match=r"\(disk full\).*decisions were logged$"):
        engine.score(records[:10], memory_log())
    with pytest.raises(HistoryWriteError, match="were not logged either"):
        engine.score(records[10:], memory_log(fail="committing"))


def test_a_log_has_the_records_before_scoring_and_is_told_when_it_fails(
        tmp_path, transactions, api_records, tx_detector, tx_model, memory_log,
        monkeypatch) -> None:
    records = api_records(transactions.iloc[:40])
    engine = scorer(tmp_path, tx_detector, tx_model)
    first, second = memory_log(), memory_log()
    engine.score(records[:20], first)
    assert first.events == ["begin 20", "texts", "attach 20", "commit"]
    monkeypatch.setattr(engine, "_at_feature_times", failing("features failed"))
    with pytest.raises(OSError, match="features failed"):
        engine.score(records[20:], second)
    assert second.events == ["begin 20", "abandon"]
    monkeypatch.undo()
    assert len(engine.store.load()) == 20
    assert len(engine.score(records[20:], memory_log()).decisions) == 20


def test_a_history_that_cannot_take_back_unlogged_records_retires_the_scorer(
        tmp_path, transactions, api_records, tx_detector, tx_model, memory_log) -> None:
    engine = scorer(tmp_path, tx_detector, tx_model)
    engine.store.remove = failing("history gone")
    with pytest.raises(HistoryWriteError, match=r"\(history gone\).*not logged either"):
        engine.score(api_records(transactions.iloc[:10]), memory_log(fail="committing"))
