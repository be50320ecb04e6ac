"""AuditLog: round trip, queries, tamper detection and concurrent appends, on SQLite and on a
throw-away PostgreSQL server."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
import uuid
from contextlib import closing
from datetime import UTC, datetime

import numpy as np
import pytest
import sqlalchemy as sa

from illicitflows.audit import AuditLog, DecisionBatch, DecisionInput
from illicitflows.audit.canonical import canonical_json, sha256_hex
from illicitflows.audit.chain import GENESIS_HASH, row_hash
from illicitflows.audit.schema import chain_head, decisions, logged, requests
from illicitflows.db import SQLITE_PAGE_SIZE, checkpoint, make_engine


@pytest.fixture
def url(database_url: str) -> str:
    return database_url


def decision(i: int = 0, **overrides) -> DecisionInput:
    fields = {
        "request_id": f"req-{i // 10}", "detector": "transactions", "model_name": "aml-lgbm",
        "model_version": "3", "run_id": "run-abc", "features_version": "f1", "key_id": "k1",
        "record": {"amount_paid": 100.0 + i, "from_account": f"A{i}",
                   "timestamp": datetime(2022, 9, 1, 0, i % 60)},
        "score": i / 100, "threshold": 0.5, "flagged": i % 3 == 0,
        "explanation": {"base_value": 0.1, "contributions": {"amount_paid": 0.2},
                        "reasons": ["large amount"]} if i % 3 == 0 else None,
    }
    return DecisionInput(**{**fields, **overrides})


def execute(url: str, statement) -> None:
    """Tamper with the database behind the log's back."""
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(statement)
    engine.dispose()


def row(url: str, seq: int) -> dict:
    engine = make_engine(url)
    with engine.connect() as connection:
        found = connection.execute(logged.add_columns(decisions.c.request_seq)
                                   .where(decisions.c.seq == seq)).one()
    engine.dispose()
    return dict(found._mapping)


def filled(log: AuditLog, n: int = 10) -> list:
    return log.append([decision(i) for i in range(n)])


def test_append_get_round_trip(log: AuditLog) -> None:
    extra = decision(1, record={"amount": np.float64(12.5), "count": np.int64(3),
                                "missing": float("nan"), "at": datetime(2022, 9, 1, 12, 30)})
    stored = log.append([decision(0), extra])
    assert [s.seq for s in stored] == [1, 2]
    assert stored[0].prev_hash == GENESIS_HASH and stored[1].prev_hash == stored[0].row_hash
    for item in stored:
        assert log.get(item.decision_id) == item
    got = log.get(stored[1].decision_id)
    assert got.record == {"amount": 12.5, "count": 3, "missing": None, "at": "2022-09-01T12:30:00"}
    assert got.record_sha256 == sha256_hex(canonical_json(got.record))
    assert (got.model_version, got.run_id, got.features_version) == ("3", "run-abc", "f1")
    assert stored[0].explanation["contributions"] == {"amount_paid": 0.2}
    assert stored[1].explanation is None
    created = datetime.fromisoformat(got.created_at)
    assert created.tzinfo is not None and created.utcoffset().total_seconds() == 0
    assert len(got.created_at.split(".")[1].split("+")[0]) == 6  # microseconds
    assert log.get("no-such-id") is None


def test_empty_append_writes_nothing(log: AuditLog) -> None:
    assert log.append([]) == []
    assert log.query().total == 0
    assert log.verify().ok


def test_caller_chosen_ids_and_atomic_batches(log: AuditLog) -> None:
    chosen = str(uuid.uuid4())
    stored = log.append([decision(0, decision_id=chosen)])
    assert stored[0].decision_id == chosen and log.get(chosen) == stored[0]
    with pytest.raises(sa.exc.IntegrityError):  # duplicate id: the whole batch is refused
        log.append([decision(1), decision(2, decision_id=chosen)])
    assert log.query().total == 1 and log.verify().ok
    assert log.append([decision(3)])[0].seq == 2


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="decision_id"):
        decision(decision_id="not-a-uuid")
    with pytest.raises(ValueError, match="detector"):
        decision(detector="crypto")
    with pytest.raises(ValueError, match="finite"):
        decision(score=float("nan"))


def batch_of(inputs: list[DecisionInput], **overrides) -> DecisionBatch:
    """The inputs (one request: shared fields from the first) as a :class:`DecisionBatch`."""
    first = inputs[0]
    fields = {name: getattr(first, name) for name in (
        "request_id", "detector", "model_name", "model_version", "threshold", "key_id",
        "run_id", "features_version")}
    fields.update(decision_ids=[d.decision_id for d in inputs],
                  record_texts=[canonical_json(d.record) for d in inputs],
                  scores=[d.score for d in inputs],
                  flagged=[d.flagged for d in inputs],
                  explanations=[d.explanation for d in inputs])
    return DecisionBatch(**{**fields, **overrides})


def test_a_batch_logs_the_rows_of_its_decisions_one_by_one(tmp_path, log: AuditLog) -> None:
    """log_batch and append of the same decisions store the same rows; both chain."""
    inputs = [decision(i, request_id="req", decision_id=str(uuid.uuid4())) for i in range(12)]
    inputs[4] = decision(4, request_id="req", decision_id=str(uuid.uuid4()),
                         record={"amount": np.float64(-0.0), "missing": float("nan"), "n": 3})
    single = AuditLog(f"sqlite:///{tmp_path / 'one_by_one.db'}")
    single.append(inputs[:2])
    log.append(inputs[:2])
    single.append(inputs[2:])
    log.log_batch(batch_of(inputs[2:]))
    skipped = {"created_at", "prev_hash", "row_hash"}
    assert [{k: v for k, v in vars_of(d).items() if k not in skipped}
            for d in log.query(page_size=100).items] == \
        [{k: v for k, v in vars_of(d).items() if k not in skipped}
         for d in single.query(page_size=100).items]
    assert log.verify().ok and log.verify().checked == 12
    single.close()


def vars_of(stored) -> dict:
    return {name: getattr(stored, name) for name in stored.__dataclass_fields__}


def test_a_batch_rejects_bad_input() -> None:
    inputs = [decision(i, decision_id=str(uuid.uuid4())) for i in range(3)]
    with pytest.raises(ValueError, match="one record, score, flag"):
        batch_of(inputs, scores=[0.1, 0.2])
    ids = batch_of(inputs).decision_ids
    for bad in (["not-a-uuid", *ids[1:]], [ids[0], ids[1].upper(), ids[2]],
                [f"{ids[0]}\n{ids[1]}", ids[2], ids[2]], [*ids[:2], None]):
        with pytest.raises(ValueError, match="decision_id"):
            batch_of(inputs, decision_ids=bad)
    with pytest.raises(ValueError, match="detector"):
        batch_of(inputs, detector="crypto")
    with pytest.raises(ValueError, match="finite"):
        batch_of(inputs, scores=[0.1, float("inf"), 0.2])
    with pytest.raises(ValueError, match="finite"):
        batch_of(inputs, threshold=float("nan"))


def test_sqlite_is_durable_wal(url: str, log: AuditLog) -> None:
    if not url.startswith("sqlite"):
        pytest.skip("SQLite only")
    engine = make_engine(url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert connection.exec_driver_sql("PRAGMA page_size").scalar() == SQLITE_PAGE_SIZE
    engine.dispose()


def test_sqlite_rows_append_at_the_end_of_every_index(url: str, log: AuditLog) -> None:
    """seq is the rowid (no index of its own), and the decision ids the log makes are
    time-ordered (the unique index on them grows at its end): their milliseconds never
    decrease with seq, and one append's ids increase."""
    if not url.startswith("sqlite"):
        pytest.skip("SQLite only")
    stored = [log.append([decision(i)])[0] for i in range(3)] + log.append(
        [decision(i) for i in range(3, 6)])
    millis = [uuid.UUID(d.decision_id).int >> 80 for d in stored]
    assert millis == sorted(millis)
    assert [d.decision_id for d in stored[3:]] == sorted(d.decision_id for d in stored[3:])
    with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as connection:
        indexes = connection.execute("SELECT name FROM pragma_index_list('audit_decisions')")
        columns = {tuple(column for (column,) in connection.execute(
            "SELECT name FROM pragma_index_info(?)", (name,))) for (name,) in indexes}
        rowid = connection.execute("SELECT rowid, seq FROM audit_decisions").fetchall()
    assert ("seq",) not in columns and ("decision_id",) in columns
    assert all(row == seq for row, seq in rowid)


def test_an_existing_sqlite_database_keeps_its_page_size(tmp_path) -> None:
    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA page_size=4096")
        connection.execute("CREATE TABLE t (x)")
        connection.commit()
    AuditLog(f"sqlite:///{path}").close()
    with closing(sqlite3.connect(path)) as connection:
        assert connection.execute("PRAGMA page_size").fetchone() == (4096,)


def test_wal_is_checkpointed_in_the_background_and_kept_after_a_restart(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    log = AuditLog(url)
    with log._engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    stored = [log.append([decision(10 * batch + i) for i in range(10)])
              for batch in range(30)]
    pages = lambda: (tmp_path / "audit.db").stat().st_size // 4096  # noqa: E731
    deadline = time.monotonic() + 10
    while pages() < 30 and time.monotonic() < deadline:  # commits alone never copy the WAL back
        time.sleep(0.05)
    assert pages() >= 30, "the checkpointer thread copied the WAL into the database"
    # A PASSIVE checkpoint is not kept waiting by the log's idle connections; it reports busy
    # only while the background thread is checkpointing at the same moment, so retry briefly.
    deadline = time.monotonic() + 10
    while (result := checkpoint(log._engine))[0] and time.monotonic() < deadline:
        time.sleep(0.05)
    busy, frames, done = result
    assert busy == 0 and frames == done, result
    log.close()
    restarted = AuditLog(url)
    assert restarted.verify().ok and restarted.verify().checked == 300
    assert restarted.get(stored[-1][-1].decision_id) == stored[-1][-1]
    restarted.close()


def test_default_url_is_in_data_dir(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ILLICITFLOWS_DATA_DIR", str(tmp_path))
    audit_log = AuditLog()
    audit_log.close()
    assert audit_log.url == f"sqlite:///{tmp_path / 'audit.db'}"
    assert (tmp_path / "audit.db").exists()


def test_chain_verifies_across_batches_and_pages(log: AuditLog) -> None:
    stored = filled(log, 7) + log.append([decision(i) for i in range(7, 12)])
    report = log.verify(page_size=5)
    assert report.ok and report.checked == 12 and report.first_bad_seq is None
    assert report.head_hash == stored[-1].row_hash


def test_edited_score_is_named(url: str, log: AuditLog) -> None:
    stored = filled(log)
    execute(url, decisions.update().where(decisions.c.seq == 5).values(score=0.01))
    report = log.verify(page_size=3)
    assert not report.ok
    assert (report.first_bad_seq, report.first_bad_decision_id) == (5, stored[4].decision_id)
    assert report.checked == 4 and "row_hash" in report.problem


def test_edited_record_is_named(url: str, log: AuditLog) -> None:
    stored = filled(log)
    execute(url, decisions.update().where(decisions.c.seq == 3)
            .values(record='{"amount_paid":1.0}'))
    report = log.verify()
    assert (report.ok, report.first_bad_decision_id) == (False, stored[2].decision_id)
    assert "record_sha256" in report.problem


def test_deleted_middle_row_names_the_next(url: str, log: AuditLog) -> None:
    stored = filled(log)
    execute(url, decisions.delete().where(decisions.c.seq == 5))
    report = log.verify()
    assert (report.ok, report.first_bad_seq) == (False, 6)
    assert report.first_bad_decision_id == stored[5].decision_id
    assert "seq gap" in report.problem


def test_deleted_last_row_is_caught_by_the_head(url: str, log: AuditLog) -> None:
    filled(log)
    execute(url, decisions.delete().where(decisions.c.seq == 10))
    report = log.verify()
    assert (report.ok, report.first_bad_seq, report.checked) == (False, 10, 9)
    assert "chain head" in report.problem


def decision_row(fields: dict) -> dict:
    """The ``audit_decisions`` columns of a logged decision (its request's are elsewhere)."""
    return {column.name: fields[column.name] for column in decisions.c}


def forged(prev: dict, seq: int) -> dict:
    """A well-formed row that links to ``prev``: what a forger who knows the scheme writes."""
    fake = {**prev, "seq": seq, "decision_id": "00000000-0000-4000-8000-000000000000",
            "score": 0.0, "flagged": False, "prev_hash": prev["row_hash"]}
    fake["row_hash"] = row_hash(fake["prev_hash"], fake)
    return fake


def test_inserted_row_breaks_the_link_after_it(url: str, log: AuditLog) -> None:
    stored = filled(log)
    fake = forged(row(url, 4), 5)
    for seq in range(10, 4, -1):  # make room at seq 5
        execute(url, decisions.update().where(decisions.c.seq == seq).values(seq=seq + 1))
    execute(url, decisions.insert().values(**decision_row(fake)))
    execute(url, chain_head.update().values(seq=11))
    report = log.verify()
    assert (report.ok, report.first_bad_seq) == (False, 6)
    assert report.first_bad_decision_id == stored[4].decision_id
    assert "prev_hash" in report.problem


def test_inserted_row_with_bad_hash_is_named(url: str, log: AuditLog) -> None:
    filled(log)
    fake = {**forged(row(url, 10), 11), "row_hash": "f" * 64}
    execute(url, decisions.insert().values(**decision_row(fake)))
    execute(url, chain_head.update().values(seq=11, row_hash=fake["row_hash"]))
    report = log.verify()
    assert (report.ok, report.first_bad_seq, report.first_bad_decision_id) == (
        False, 11, fake["decision_id"])


def test_row_appended_behind_the_logs_back_is_caught(url: str, log: AuditLog) -> None:
    filled(log)
    fake = forged(row(url, 10), 11)
    execute(url, decisions.insert().values(**decision_row(fake)))
    report = log.verify()
    assert (report.ok, report.first_bad_seq, report.first_bad_decision_id) == (
        False, 11, fake["decision_id"])
    assert "beyond the chain head" in report.problem


def test_rewritten_last_row_is_caught_by_the_head(url: str, log: AuditLog) -> None:
    stored = filled(log)
    fake = forged(row(url, 9), 10)
    execute(url, decisions.delete().where(decisions.c.seq == 10))
    execute(url, decisions.insert().values(**decision_row(fake)))
    report = log.verify()
    assert (report.ok, report.first_bad_seq) == (False, 10)
    assert report.first_bad_decision_id == fake["decision_id"] != stored[9].decision_id


def test_query_filters_and_pages(log: AuditLog) -> None:
    first = filled(log, 30)
    later = log.append([decision(i, model_version="4", detector="trade") for i in range(30, 40)])
    everything = log.query(page_size=1000)
    assert everything.total == 40 and [d.seq for d in everything.items] == list(range(1, 41))
    flagged = log.query(flagged=True, page_size=1000)
    assert flagged.total == sum(d.flagged for d in first + later)
    assert all(d.flagged for d in flagged.items)
    assert log.query(flagged=False).total == 40 - flagged.total
    assert log.query(model_version="4").total == 10
    assert log.query(detector="trade", model_version="3").total == 0
    assert log.query(detector="transactions").total == 30
    pages = [log.query(page=p, page_size=7) for p in (1, 2, 6, 7)]
    assert [len(p.items) for p in pages] == [7, 7, 5, 0]
    assert pages[1].items[0].seq == 8 and pages[2].page == 6 and pages[2].total == 40
    assert log.query(from_time=later[0].created_at).total == 10
    assert log.query(to_time=later[0].created_at).total == 30  # exclusive
    assert log.query(from_time=datetime.fromisoformat(first[0].created_at),
                     to_time=datetime.now(UTC), flagged=True).total == flagged.total
    assert log.query(from_time=datetime(2100, 1, 1)).total == 0
    with pytest.raises(ValueError):
        log.query(page=0)
    with pytest.raises(ValueError):
        log.query(page_size=5000)


def _append_batches(url: str, worker: int, batches: int, size: int) -> None:
    audit_log = AuditLog(url)
    for batch in range(batches):
        audit_log.append([decision(i, request_id=f"w{worker}-b{batch}") for i in range(size)])
    audit_log.close()


def assert_unforked(log: AuditLog, workers: int, batches: int, size: int) -> None:
    report = log.verify()
    assert report.ok, report
    assert report.checked == workers * batches * size
    items = log.query(page_size=1000).items
    for start in range(0, len(items), size):  # each batch got consecutive seqs
        assert len({d.request_id for d in items[start:start + size]}) == 1


def test_latest_decisions_of_a_detector(log: AuditLog) -> None:
    stored = log.append([decision(i, detector="trade" if i % 3 == 1 else "transactions")
                         for i in range(9)])
    tx = [s for s in stored if s.detector == "transactions"]
    assert log.decisions_before("transactions") == tx[::-1]
    assert log.decisions_before("transactions", tx[-1].seq, limit=2) == [tx[-2], tx[-3]]
    assert log.decisions_after("transactions", tx[1].seq, limit=3) == tx[2:5]
    assert log.decisions_after("trade", stored[-1].seq) == []
    assert log.decisions_before("trade", 1) == []


def test_index_added_later_is_created_on_an_existing_log(url: str, log: AuditLog) -> None:
    filled(log, 3)
    execute(url, sa.text("DROP INDEX ix_audit_requests_detector_first_seq"))
    engine = make_engine(url)
    assert "ix_audit_requests_detector_first_seq" not in {
        i["name"] for i in sa.inspect(engine).get_indexes("audit_requests")}
    AuditLog(url).close()
    assert "ix_audit_requests_detector_first_seq" in {
        i["name"] for i in sa.inspect(engine).get_indexes("audit_requests")}
    engine.dispose()


def test_concurrent_threads_keep_one_chain(url: str, log: AuditLog) -> None:
    threads = [threading.Thread(target=_append_batches, args=(url, w, 15, 20)) for w in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert_unforked(log, 2, 15, 20)


def test_concurrent_processes_keep_one_chain(url: str, log: AuditLog) -> None:
    log.close()  # no open connections across fork
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_append_batches, args=(url, w, 15, 20))
                 for w in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    assert [p.exitcode for p in processes] == [0, 0]
    assert_unforked(log, 2, 15, 20)


def test_an_edited_request_field_is_named_at_its_first_decision(url: str, log: AuditLog) -> None:
    stored = log.append([decision(i) for i in range(25)])  # requests req-0, req-1, req-2
    execute(url, requests.update().where(requests.c.request_id == "req-1")
            .values(model_version="9"))
    report = log.verify()
    assert (report.ok, report.first_bad_seq) == (False, 11)
    assert report.first_bad_decision_id == stored[10].decision_id
    assert "row_hash" in report.problem


def test_a_request_no_longer_spanning_its_decisions_is_caught(url: str,
                                                              log: AuditLog) -> None:
    stored = filled(log, 10)
    execute(url, requests.update().values(last_seq=7))
    assert log.get(stored[8].decision_id) is None
    report = log.verify()
    assert (report.ok, report.first_bad_seq) == (False, 8)


#: The audit table of the first layout: every field in each decision row.
FIRST_LAYOUT = sa.Table(
    "audit_decisions", sa.MetaData(),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("decision_id", sa.String(36), nullable=False, unique=True),
    *(sa.Column(name, sa.String) for name in (
        "request_id", "created_at", "key_id", "detector", "model_name", "model_version",
        "run_id", "features_version", "record", "record_sha256", "explanation", "prev_hash",
        "row_hash")),
    sa.Column("score", sa.Double), sa.Column("threshold", sa.Double),
    sa.Column("flagged", sa.Boolean),
    sa.Index("ix_audit_decisions_detector_seq", "detector", "seq"),
)


def test_a_first_layout_log_is_split_into_requests_and_decisions(tmp_path) -> None:
    current = AuditLog(f"sqlite:///{tmp_path / 'current.db'}")
    stored = current.append([decision(i, model_version=str(3 + i // 15)) for i in range(30)])
    stored += current.append([decision(i, request_id="req-2") for i in range(30, 33)])
    old_url = f"sqlite:///{tmp_path / 'first.db'}"
    engine = make_engine(old_url)
    with current._engine.connect() as source, engine.begin() as target:
        FIRST_LAYOUT.create(target)
        chain_head.create(target)
        target.execute(FIRST_LAYOUT.insert(),
                       [dict(r._mapping) for r in source.execute(logged.order_by(decisions.c.seq))])
        target.execute(chain_head.insert(), [dict(r._mapping)
                                             for r in source.execute(sa.select(chain_head))])
    migrated = AuditLog(old_url)
    assert migrated.query(page_size=1000).items == current.query(page_size=1000).items == stored
    report = migrated.verify()
    assert report.ok and report.checked == 33 and report.head_hash == stored[-1].row_hash
    with engine.connect() as connection:  # runs: req-0, req-1 at version 3 then 4, req-2 twice
        spans = connection.execute(sa.select(requests.c.first_seq, requests.c.last_seq)
                                   .order_by(requests.c.first_seq)).all()
    assert spans == [(1, 10), (11, 15), (16, 20), (21, 30), (31, 33)]
    assert migrated.query(model_version="4").total == 15
    assert migrated.decisions_before("transactions", limit=1) == [stored[-1]]
    migrated.append([decision(40)])
    assert migrated.verify().ok
    engine.dispose()


def test_filtered_queries_read_the_decisions_by_position(url: str, log: AuditLog) -> None:
    """A filter on the requests' fields (here the time) becomes a range of positions, so
    SQLite reads the decisions of that range instead of scanning them all (as it did for a
    time filter, to keep to the order of positions)."""
    if not url.startswith("sqlite"):
        pytest.skip("SQLite only")
    first = filled(log, 30)
    statements = []
    sa.event.listen(log._engine, "before_cursor_execute",
                    lambda _c, _k, statement, parameters, _x, _m:
                    statements.append((statement, parameters)))
    log.query(from_time=first[0].created_at, page_size=5)
    pages = [s for s in statements if "ORDER BY audit_decisions.seq" in s[0]]
    with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as connection:
        plan = " / ".join(row[-1] for statement, parameters in pages for row in
                          connection.execute(f"EXPLAIN QUERY PLAN {statement}", parameters))
    assert "SEARCH audit_decisions USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)" in plan
    assert "SCAN audit_decisions" not in plan


@pytest.mark.parametrize(("change", "first_bad", "problem"), [
    (requests.update().where(requests.c.first_seq == 1).values(last_seq=15), 11,
     "do not tile"),  # widened over the next request
    (requests.insert().values(first_seq=5, last_seq=7, request_id="forged", detector="trade",
                              created_at="2000-01-01T00:00:00", model_name="m",
                              model_version="1", threshold=0.5), 5, "do not tile"),
    (requests.insert().values(first_seq=26, last_seq=30, request_id="forged",
                              detector="trade", created_at="2100-01-01T00:00:00",
                              model_name="m", model_version="1", threshold=0.5), 26,
     "beyond the chain head"),
])
def test_request_rows_that_do_not_tile_the_log_are_named(url: str, log: AuditLog, change,
                                                         first_bad: int, problem: str) -> None:
    log.append([decision(i) for i in range(25)])  # requests 1-10, 11-20, 21-25
    assert log.verify().ok
    execute(url, change)
    report = log.verify(page_size=2)
    assert (report.ok, report.first_bad_seq) == (False, first_bad)
    assert problem in report.problem
