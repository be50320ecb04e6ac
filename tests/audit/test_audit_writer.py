"""The audit writer process: batches handed over are committed before their wait returns;
refused batches, a dead writer and an unusable database each raise a named error."""

from __future__ import annotations

import os
import signal

import pandas as pd
import pytest

from illicitflows.audit.canonical import canonical_json
from illicitflows.audit.models import DecisionBatch
from illicitflows.audit.store import AuditLog
from illicitflows.audit.writer import AuditWriteError, AuditWriter
from illicitflows.ids import uuid7_texts


def records(size: int) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"r{i}" for i in range(size)],
                         "amount_paid": [10.5 * i for i in range(size)]})


def batch(size: int, request_id: str = "req", ids: list[str] | None = None,
          texts: list[str] | None = None) -> DecisionBatch:
    return DecisionBatch(
        request_id=request_id, detector="transactions", model_name="aml", model_version="2",
        threshold=0.5, decision_ids=ids or uuid7_texts(size),
        record_texts=texts or [canonical_json(row) for row in records(size).to_dict("records")],
        scores=[i / size for i in range(size)], flagged=[i % 2 == 0 for i in range(size)],
        explanations=[{"base_value": 0.1, "reasons": []} if i % 2 == 0 else None
                      for i in range(size)],
        key_id="k1", run_id="run", features_version="f1")


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'audit.db'}"


@pytest.fixture
def writer(url: str):
    audit_writer = AuditWriter(url)
    yield audit_writer
    audit_writer.close()


def test_a_batch_is_committed_when_its_wait_returns(url: str, writer: AuditWriter) -> None:
    first, second = batch(300, "req-1"), batch(5, "req-2")
    writer.submit(first)()
    reader = AuditLog(url)  # another connection sees the rows: they are committed
    stored = reader.get(first.decision_ids[7])
    assert stored is not None and stored.request_id == "req-1" and stored.score == 7 / 300
    assert stored.record == {"id": "r7", "amount_paid": 73.5}
    writer.submit(second)()
    report = reader.verify()
    assert report.ok and report.checked == 305
    assert [d.decision_id for d in reader.decisions_before("transactions", limit=5)] == \
        second.decision_ids[::-1]


def test_a_refused_batch_is_named_and_the_writer_goes_on(url: str, writer: AuditWriter) -> None:
    taken = batch(3)
    writer.submit(taken)()
    with pytest.raises(AuditWriteError, match="refused.*IntegrityError"):
        writer.submit(batch(2, ids=[uuid7_texts(1)[0], taken.decision_ids[0]]))()
    writer.submit(batch(4))()
    assert AuditLog(url).verify().checked == 7  # the refused batch left no row


def test_a_writer_dying_with_a_batch_in_hand_is_named_then_replaced(
        url: str, writer: AuditWriter) -> None:
    writer.submit(batch(2))()
    dying = writer._process.pid
    os.kill(dying, signal.SIGSTOP)  # it cannot take the next batch before it is killed
    wait = writer.submit(batch(2))
    os.kill(dying, signal.SIGKILL)
    with pytest.raises(AuditWriteError, match="exited before confirming"):
        wait()
    writer.submit(batch(3))()  # handed to a new writer
    assert writer._process.pid != dying
    assert AuditLog(url).verify().checked == 5


def test_a_database_it_cannot_open_is_named(tmp_path) -> None:
    with pytest.raises(AuditWriteError, match="could not open the audit log"):
        AuditWriter(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'audit.db'}")


def test_closing_stops_the_process(writer: AuditWriter) -> None:
    process = writer._process
    writer.close()
    assert process.poll() == 0


def ahead(writer: AuditWriter, size: int, request_id: str = "ahead") -> DecisionBatch:
    """A request whose records went to the writer before its decisions: the batch of them."""
    ids = uuid7_texts(size)
    writer.prepare(ids, records(size))
    return batch(size, request_id, ids, writer.texts())


def test_records_sent_ahead_of_their_decisions_log_the_same_rows(
        url: str, writer: AuditWriter, tmp_path) -> None:
    early = ahead(writer, 50)
    assert early.record_texts == batch(50).record_texts  # the writer wrote the same texts
    writer.submit(early)()
    inline = AuditLog(f"sqlite:///{tmp_path / 'inline.db'}")
    inline.log_batch(early)
    reader = AuditLog(url)
    assert [vars_of(d) for d in reader.query(page_size=100).items] == \
        [vars_of(d) for d in inline.query(page_size=100).items]
    whole = batch(50, "whole")
    writer.prepare(whole.decision_ids, records(50))
    writer.abandon()  # the request failed while it was scored, before it read the texts
    ahead(writer, 5)
    writer.abandon()  # the same, after
    writer.submit(whole)()
    report = reader.verify()
    assert report.ok and report.checked == 100


def vars_of(stored) -> dict:
    """A stored decision's fields but those of the log's own making (time, hashes)."""
    return {name: getattr(stored, name) for name in stored.__slots__
            if name not in ("created_at", "prev_hash", "row_hash")}


def test_decisions_of_other_records_than_those_sent_ahead_are_refused(
        writer: AuditWriter) -> None:
    ahead(writer, 3)
    with pytest.raises(ValueError, match="not the prepared ones"):
        writer.submit(batch(3))
    writer.submit(batch(2))()  # the writer is free again
    writer.prepare(uuid7_texts(3), records(3))  # and again before the texts were read
    with pytest.raises(ValueError, match="not the prepared ones"):
        writer.submit(batch(3))
    writer.submit(ahead(writer, 2))()


def test_records_it_cannot_write_are_named_and_the_request_abandoned(
        url: str, writer: AuditWriter) -> None:
    writer.prepare(uuid7_texts(1), pd.DataFrame({"x": [object()]}))
    with pytest.raises(AuditWriteError, match="could not write the records"):
        writer.texts()
    writer.abandon()
    writer.submit(ahead(writer, 2))()
    assert AuditLog(url).verify().checked == 2


def test_records_sent_to_a_dead_writer_go_to_a_new_one(url: str, writer: AuditWriter) -> None:
    gone = writer._process.pid
    os.kill(gone, signal.SIGKILL)
    writer._process.wait()
    writer.submit(ahead(writer, 4))()
    assert writer._process.pid != gone and AuditLog(url).verify().checked == 4
