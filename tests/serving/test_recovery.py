"""The history commits without waiting for the disk and catches up with the audit log at start:
decisions a power cut took from the history come back, in order, with the same later scores."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from illicitflows.serving import replay as replay_module
from illicitflows.serving.history import HistoryStore
from illicitflows.serving.runtime import Runtime, Settings


def settings(tmp_path) -> Settings:
    return Settings(history_url=f"sqlite:///{tmp_path / 'history.db'}",
                    audit_url=f"sqlite:///{tmp_path / 'audit.db'}",
                    keys_url=f"sqlite:///{tmp_path / 'keys.db'}")


def history_ids(store: HistoryStore) -> list[str]:
    with store.engine.connect() as connection:
        return list(connection.execute(sa.select(store.table.c.decision_id)
                                       .order_by(store.table.c.seq)).scalars())


def restart_and_score_the_rest(tmp_path, transactions, records, start: int, history: list[str],
                               tx_detector, tx_model) -> Runtime:
    """The service starts again with ``history`` recovered, scores ``records[start:]`` as the
    offline path scores them, and is returned."""
    after = Runtime(settings(tmp_path))
    restarted = after.add_scorer(tx_detector, tx_model)
    assert history_ids(restarted.store) == history
    rest = restarted.score(records[start:], after.request_log(),
                              request_id=f"request-{start}")
    offline = tx_detector.score(transactions.iloc[:len(records)])["score"].to_numpy()[start:]
    np.testing.assert_allclose([d.score for d in rest.decisions], offline, rtol=0, atol=1e-9)
    return after


def test_history_is_rebuildable_state_the_audit_log_is_durable(tmp_path) -> None:
    runtime = Runtime(settings(tmp_path))
    store = HistoryStore(runtime.history_url(), "transactions")
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    with runtime.audit._engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


def test_lost_history_rows_are_restored_from_the_audit_log_at_start(
        tmp_path, transactions, api_records, tx_detector, tx_model, monkeypatch) -> None:
    records = api_records(transactions.iloc[:1500])
    before = Runtime(settings(tmp_path))
    scorer = before.add_scorer(tx_detector, tx_model)
    for number, chunk in enumerate((records[:400], records[400:700], records[700:1000])):
        scorer.score(chunk, before.request_log(), request_id=f"request-{number}")
    logged = [d.decision_id for d in before.audit.query(page_size=1000).items]
    store = scorer.store
    assert history_ids(store) == logged and len(logged) == 1000

    lost = logged[400:]  # a power cut takes the last two requests from the history
    with store.engine.begin() as connection:
        connection.execute(sa.delete(store.table).where(store.table.c.decision_id.in_(lost)))
    assert history_ids(store) == logged[:400]

    after = restart_and_score_the_rest(tmp_path, transactions, records, 1000, logged,
                                       tx_detector, tx_model)

    monkeypatch.setattr(replay_module, "load_detector", lambda domain, ref: (tx_detector, None))
    report = replay_module.replay_decision(lost[-1], after.audit, after.history_url())
    assert report.ok, report


def test_a_complete_history_is_left_as_it_is(tmp_path, transactions, api_records, tx_detector,
                                              tx_model) -> None:
    records = api_records(transactions.iloc[:200])
    before = Runtime(settings(tmp_path))
    scorer = before.add_scorer(tx_detector, tx_model)
    scorer.score(records, before.request_log(), request_id="request")
    kept = history_ids(scorer.store)
    restarted = Runtime(settings(tmp_path)).add_scorer(tx_detector, tx_model)
    assert history_ids(restarted.store) == kept


class Crash(BaseException):
    """The process dies: nothing after this point runs, no exception handler cleans up."""


def test_history_rows_of_a_request_that_crashed_before_its_audit_commit_are_dropped(
        tmp_path, transactions, api_records, tx_detector, tx_model, memory_log) -> None:
    records = api_records(transactions.iloc[:600])
    before = Runtime(settings(tmp_path))
    scorer = before.add_scorer(tx_detector, tx_model)
    scorer.score(records[:400], before.request_log(), request_id="request-0")
    logged = history_ids(scorer.store)

    def never() -> None:  # handed to the log; the history then commits, the log never will
        raise Crash

    crashing = memory_log()
    crashing.commit = never
    with pytest.raises(Crash):
        scorer.score(records[400:], crashing)
    assert len(history_ids(scorer.store)) == 600

    restart_and_score_the_rest(tmp_path, transactions, records, 400, logged, tx_detector,
                               tx_model)  # the request is retried
