"""Real traffic: records out of order within the allowed lateness, records too late or from
the future, retried requests, concurrent clients scored in micro-batches, and restarts after
all of these."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from illicitflows.ids import uuid7_texts
from illicitflows.serving.app import app
from illicitflows.serving.arrival import Arrival, feature_times
from illicitflows.serving.engine import (
    ConflictError,
    InputError,
    ModelRef,
    ScoreRequest,
    TransactionScorer,
)
from illicitflows.serving.history import HistoryStore
from illicitflows.serving.runtime import Runtime, Settings

LATENESS = pd.Timedelta(minutes=10)


def scorer(tmp_path, detector, model, arrival: Arrival | None = None,
           name: str = "h") -> TransactionScorer:
    return TransactionScorer(detector, model,
                             HistoryStore(f"sqlite:///{tmp_path / name}.db", "transactions"),
                             arrival)


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
        tmp_path, transactions, identified, tx_detector, tx_model, memory_log) -> None:
    arrived = arrival_order(transactions.iloc[:400])
    assert not arrived["timestamp"].is_monotonic_increasing
    records = identified(arrived)
    engine = scorer(tmp_path, tx_detector, tx_model)
    scores = [engine.score([record], memory_log()).decisions[0].score
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
    rest = [restarted.score([record], memory_log()).decisions[0].score
            for record in records[300:]]
    np.testing.assert_allclose(rest, expected[300:], rtol=0, atol=1e-9)


def test_a_request_is_taken_in_time_order_and_answered_in_its_own(
        tmp_path, transactions, identified, tx_detector, tx_model, memory_log) -> None:
    distinct = transactions.iloc[:300].drop_duplicates("timestamp")  # ties keep their order
    records = identified(distinct)
    reversed_batch = scorer(tmp_path, tx_detector, tx_model, name="r").score(
        records[::-1], memory_log())
    in_order = scorer(tmp_path, tx_detector, tx_model, name="o").score(records, memory_log())
    assert [d.record_id for d in reversed_batch.decisions] == [r["id"] for r in records[::-1]]
    np.testing.assert_allclose([d.score for d in reversed_batch.decisions][::-1],
                               [d.score for d in in_order.decisions], rtol=0, atol=1e-12)


def test_a_record_beyond_the_lateness_is_refused_with_its_index_field_and_limit(
        tmp_path, transactions, identified, tx_detector, tx_model, memory_log) -> None:
    records = identified(transactions.iloc[:300])
    engine = scorer(tmp_path, tx_detector, tx_model)
    engine.score(records[100:200], memory_log())
    newest = pd.Timestamp(records[199]["timestamp"])
    late = dict(records[250], timestamp=(newest - LATENESS - pd.Timedelta(seconds=1))
                .isoformat())
    just_in_time = dict(records[251], timestamp=(newest - LATENESS).isoformat())
    with pytest.raises(InputError) as caught:
        engine.score([records[200], late, just_in_time], memory_log())
    assert [(i["index"], i["field"]) for i in caught.value.issues] == [(1, "timestamp")]
    assert "allowed lateness of 10 min" in caught.value.issues[0]["reason"]
    assert len(engine.store.load()) == 100  # nothing of the refused request was taken
    taken = engine.score([records[200], just_in_time], memory_log())
    assert len(taken.decisions) == 2


@pytest.mark.parametrize("stamp", ["2200-01-01T00:00:00", "2022-09-01T12:06:00"])
def test_a_record_from_the_future_is_refused_and_does_not_move_the_clock(
        tmp_path, transactions, identified, tx_detector, tx_model, memory_log, stamp) -> None:
    """The server's clock is 12:00 on the first day of the data here: 2200 and 12:06 are
    both more than the 5 minutes of clock skew ahead of it."""
    records = identified(transactions.iloc[:200])
    arrival = Arrival(now=lambda: pd.Timestamp("2022-09-01T12:00:00"))
    engine = scorer(tmp_path, tx_detector, tx_model, arrival)
    engine.score(records[:50], memory_log())
    with pytest.raises(InputError) as caught:
        engine.score([records[50], dict(records[51], timestamp=stamp)], memory_log())
    assert [(i["index"], i["field"]) for i in caught.value.issues] == [(1, "timestamp")]
    assert "in the future" in caught.value.issues[0]["reason"]
    assert engine.score(records[50:60], memory_log()).decisions  # real records go on


def test_back_fills_turn_the_clock_skew_check_off(tmp_path, transactions, identified,
                                                  tx_detector, tx_model, memory_log) -> None:
    records = identified(transactions.iloc[:20])
    arrival = Arrival(clock_skew=None, now=lambda: pd.Timestamp("2000-01-01"))
    assert len(scorer(tmp_path, tx_detector, tx_model, arrival).score(
        records, memory_log()).decisions) == 20


def inline_runtime(tmp_path) -> Runtime:
    """A service's runtime on temporary stores (the request appends to the audit log)."""
    return Runtime(Settings(history_url=f"sqlite:///{tmp_path / 'history.db'}",
                            audit_url=f"sqlite:///{tmp_path / 'audit.db'}",
                            keys_url=f"sqlite:///{tmp_path / 'keys.db'}",
                            audit_writer="inline"))


def logged_ids(runtime: Runtime) -> list[str]:
    return [d.decision_id for d in runtime.audit.decisions_after("transactions", 0, 10_000)]


def test_a_retried_request_gets_the_original_decisions_logged_once(
        tmp_path, transactions, identified, tx_detector, tx_model) -> None:
    runtime = inline_runtime(tmp_path)
    engine = runtime.add_scorer(tx_detector, tx_model)
    records = identified(transactions.iloc[:60])
    first = engine.score(records[:40], runtime.request_log(), request_id="first",
                         explain_all=True)
    retried = engine.score(records[:40], runtime.request_log(), request_id="retry")
    assert [d.decision_id for d in retried.decisions] == [d.decision_id for d in first.decisions]
    assert all(d.repeat for d in retried.decisions)
    assert [(d.score, d.flagged, d.explanation) for d in retried.decisions] == [
        (d.score, d.flagged, d.explanation) for d in first.decisions]
    # a retry that carries new records too: those are scored, the others repeated, in order
    mixed = engine.score(records[30:50], runtime.request_log(), request_id="mixed")
    assert [d.repeat for d in mixed.decisions] == [True] * 10 + [False] * 10
    assert [d.decision_id for d in mixed.decisions[:10]] == [
        d.decision_id for d in first.decisions[30:]]
    ids = logged_ids(runtime)
    assert len(ids) == len(set(ids)) == 50 and len(engine.store.load()) == 50
    runtime.close()


def test_an_id_decided_with_other_content_is_a_conflict_naming_the_record(
        tmp_path, transactions, identified, tx_detector, tx_model) -> None:
    runtime = inline_runtime(tmp_path)
    engine = runtime.add_scorer(tx_detector, tx_model)
    records = identified(transactions.iloc[:20])
    engine.score(records[:10], runtime.request_log(), request_id="first")
    changed = dict(records[3], amount_paid=records[3]["amount_paid"] + 1)
    with pytest.raises(ConflictError) as caught:
        engine.score([records[10], changed], runtime.request_log(), request_id="second")
    assert [(i["index"], i["field"], i["value"]) for i in caught.value.issues] == [
        (1, "id", "tx-3")]
    assert len(logged_ids(runtime)) == 10
    runtime.close()


def test_a_restart_after_retries_and_late_records_is_ready_with_the_same_state(
        tmp_path, transactions, identified, tx_detector, tx_model, memory_log) -> None:
    records = identified(arrival_order(transactions.iloc[:300], seed=1))
    runtime = inline_runtime(tmp_path)
    engine = runtime.add_scorer(tx_detector, tx_model)
    for start in range(0, 200, 20):
        engine.score(records[start:start + 20], runtime.request_log(), request_id=f"r{start}")
        engine.score(records[start:start + 10], runtime.request_log(),
                     request_id=f"again{start}")
    runtime.close()
    again = inline_runtime(tmp_path)
    restarted = again.add_scorer(tx_detector, tx_model)
    assert again.ready is False and "transactions" in again.scorers  # trade is not loaded here
    assert restarted.skipped == [] and restarted.clock == engine.clock
    assert restarted.decided == engine.decided
    retried = restarted.score(records[190:210], again.request_log(), request_id="late")
    assert [d.repeat for d in retried.decisions] == [True] * 10 + [False] * 10
    expected = engine.score(records[200:210], memory_log())  # the service had it gone on
    np.testing.assert_allclose([d.score for d in retried.decisions[10:]],
                               [d.score for d in expected.decisions], rtol=0, atol=1e-12)
    again.close()


def test_a_rebuild_skips_and_reports_rows_it_cannot_take(tmp_path, transactions, identified,
                                                         tx_detector, tx_model, memory_log) -> None:
    """A history written before retries were recognised holds one id twice: the detector
    rebuilds without the second row and stays in service."""
    engine = scorer(tmp_path, tx_detector, tx_model)
    records = identified(transactions.iloc[:30])
    engine.score(records[:20], memory_log())
    last = engine.store.load().iloc[-1]  # the old service stored a retry a second time:
    engine.store.append([last["_record"]], ["tx-19"], [uuid7_texts(1)[0]],
                        [records[19]["timestamp"]], [last["_score"]], [last["_flagged"]])
    restarted = scorer(tmp_path, tx_detector, tx_model)
    assert len(restarted.skipped) == 1 and "history row 21, field id" in restarted.skipped[0]
    assert len(restarted.score(records[20:], memory_log()).decisions) == 10


@pytest.fixture
def client(tmp_path, tx_detector, tx_model):
    """The HTTP API in process with the transactions detector and a scorer's key."""
    runtime = Runtime(Settings(history_url=f"sqlite:///{tmp_path / 'history.db'}",
                               audit_url=f"sqlite:///{tmp_path / 'audit.db'}",
                               keys_url=f"sqlite:///{tmp_path / 'keys.db'}",
                               arrival=Arrival(allowed_lateness=pd.Timedelta(hours=1))))
    runtime.add_scorer(tx_detector, tx_model)
    app.state.runtime = runtime
    secret = runtime.keys.create("scorer")[1]
    with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as test_client:
        yield test_client, runtime
    runtime.close()


def test_no_single_request_takes_the_detector_out_of_service(client, transactions,
                                                              identified) -> None:
    """Future, far past, NaN-ish times, duplicate ids and retried bodies: each answered with
    the record's index (or as a repeat), and real records go on being scored."""
    http, runtime = client
    records = identified(transactions.iloc[:100])
    assert http.post("/transactions/score", json={"transactions": records[:50]}).status_code == 200
    hostile = {
        "future": [dict(records[50], timestamp="2200-01-01T00:00:00")],
        "far past": [dict(records[50], timestamp="1970-01-01T00:00:00")],
        "NaN time": [records[50], dict(records[51], timestamp="NaN")],
        "NaT time": [records[50], dict(records[51], timestamp="NaT")],
        "empty time": [records[50], dict(records[51], timestamp="")],
        "duplicate ids": [records[50], dict(records[51], id=records[50]["id"])],
        "id decided with other content": [records[50], dict(records[3], amount_paid=1.0)],
    }
    expected = {"future": (422, 0), "far past": (422, 0), "NaN time": (422, 1),
                "NaT time": (422, 1), "empty time": (422, 1), "duplicate ids": (422, 1),
                "id decided with other content": (409, 1)}
    for name, body in hostile.items():
        answer = http.post("/transactions/score", json={"transactions": body})
        status, index = expected[name]
        assert answer.status_code == status, (name, answer.text)
        assert index in [e["index"] for e in answer.json()["errors"]], (name, answer.text)
    retried = [http.post("/transactions/score", json={"transactions": records[40:50]})
               for _ in range(2)]
    assert all(r.status_code == 200 and all(x["repeat"] for x in r.json()["results"])
               for r in retried)
    after = http.post("/transactions/score", json={"transactions": records[50:100]})
    assert after.status_code == 200, after.text
    assert len(runtime.scorers["transactions"].store.load()) == 100
    decisions = logged_ids(runtime)
    assert len(decisions) == len(set(decisions)) == 100


def test_a_micro_batch_gives_each_request_what_scoring_it_alone_gives(
        tmp_path, transactions, identified, tx_detector, tx_model, memory_log) -> None:
    """Single-record requests arriving out of order, a retry of a request in flight, one too
    late and one with two records: scored together in one commit, each answered as if
    scored alone in arrival order."""
    records = identified(arrival_order(transactions.iloc[:120], seed=2))
    together = scorer(tmp_path, tx_detector, tx_model, name="together")
    alone = scorer(tmp_path, tx_detector, tx_model, name="alone")
    for engine in (together, alone):
        engine.score(records[:40], memory_log())
    late = dict(records[40], id="late", timestamp="2022-09-01T00:00:00")
    bodies = [[r] for r in records[40:100]] + [[records[41]], [late], records[100:102]]
    requests = [ScoreRequest(body, request_id=f"r{n}") for n, body in enumerate(bodies)]
    log = memory_log()
    deferred = together.score_batch(requests, log)
    assert deferred == [requests[60]]  # a retry of record 41, whose original is in flight
    assert log.events == ["begin 62", "texts", "attach 62", "commit"]  # one group commit
    assert isinstance(requests[61].error, InputError)
    assert requests[61].error.issues[0]["index"] == 0
    for n, request in enumerate(requests):
        if n in (60, 61):
            continue
        one = alone.score(bodies[n], memory_log(), request_id=f"r{n}")
        got = request.outcome()
        assert [(d.record_id, d.score, d.flagged, d.explanation) for d in got.decisions] == [
            (d.record_id, d.score, d.flagged, d.explanation) for d in one.decisions]
        assert got.rollups == one.rollups and got.networks == one.networks
    assert together.clock == alone.clock and together.decided.keys() == alone.decided.keys()


def test_concurrent_out_of_order_clients_all_get_200_equal_to_one_at_a_time(
        client, tmp_path, transactions, identified, tx_detector, tx_model, memory_log) -> None:
    """Eight clients send single records (neighbours in time in any order) at once; every
    answer is 200 and the decisions, in the order the log took them, are those of scoring
    the records one at a time in that order."""
    http, runtime = client
    records = identified(arrival_order(transactions.iloc[:160], seed=3))
    lanes = [records[lane::8] for lane in range(8)]
    rounds = threading.Barrier(8)  # the clients keep within the lateness of each other

    def send(lane: list[dict]) -> list[int]:
        statuses = []
        for record in lane:
            rounds.wait(timeout=60)
            statuses.append(http.post("/transactions/score",
                                      json={"transactions": [record]}).status_code)
        return statuses

    with ThreadPoolExecutor(8) as pool:
        statuses = [s for lane in pool.map(send, lanes) for s in lane]
    assert statuses == [200] * 160
    logged = runtime.audit.decisions_after("transactions", 0, 10_000)
    alone = scorer(tmp_path, tx_detector, tx_model, runtime.settings.arrival, name="alone")
    scores = [alone.score([d.record], memory_log()).decisions[0].score for d in logged]
    assert [d.score for d in logged] == scores


def test_declarations_are_retried_and_micro_batched_by_date(tmp_path, declarations,
                                                             trade_detector, memory_log) -> None:
    """Trade takes the same path: a day's declarations in any order, a retry answered with
    the originals, an earlier day beyond the lateness refused with its index."""
    runtime = inline_runtime(tmp_path)
    model = ModelRef("illicitflows-trade", "1", "run-1")
    engine = runtime.add_scorer(trade_detector, model)
    tail = declarations.tail(60).drop(columns=["fraud", "typology", "revenue"])
    records = json.loads(tail.to_json(orient="records", date_format="iso"))
    first = engine.score(records[:40], runtime.request_log(), request_id="first")
    requests = [ScoreRequest(records[:20], request_id="retry"),
                ScoreRequest(records[40:60], request_id="next"),
                ScoreRequest([dict(records[40], declaration_id="old", date="2022-01-02")])]
    engine.score_batch(requests, runtime.request_log())
    assert [d.decision_id for d in requests[0].outcome().decisions] == [
        d.decision_id for d in first.decisions[:20]]
    assert len(requests[1].outcome().decisions) == 20
    assert requests[2].error.issues[0]["index"] == 0
    assert len(engine.store.load()) == 60
    runtime.close()
