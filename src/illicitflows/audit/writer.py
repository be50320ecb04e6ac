"""Audit appends in a process of their own.

The scoring service hands a request's decisions to :class:`AuditWriter` and goes on (history,
roll-ups, the response body) while the writer process chains, inserts and commits them; the
answer waits for the writer's acknowledgement, so a 200 still means every decision is durably
logged. Python threads could not overlap this work: chaining and inserting hold the
interpreter lock. A request's ids and typed records can go ahead, before it is scored: the
writer writes their canonical JSON (the texts the history and the log store) and sends it back,
then digests and encodes it while the features are computed; the decisions follow.

The protocol is a pair of pipes between the service and ``python -m illicitflows.audit.writer``:
the database URL first (never on the command line: it may hold a password), then per commit
either whole :class:`~illicitflows.audit.models.DecisionBatch` es (one per request, committed
together) or their records then their decisions (or word that they failed), each commit
answered with ``None`` once durable or with the error's text. The writer exits when the
service closes its pipe.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

import pandas as pd

from illicitflows.audit.canonical import frame_texts
from illicitflows.audit.models import DecisionBatch
from illicitflows.audit.store import AuditLog, PreparedRecords, prepare_records
from illicitflows.db import CHECKPOINTER
from illicitflows.heap import freeze_loaded

#: How long the service waits for a new writer to open the audit log.
START_TIMEOUT_S = 120.0
#: How long it waits for an answer (twice SQLite's busy timeout) before it stops the writer.
ANSWER_TIMEOUT_S = 120.0
_READY = "ready"
#: Messages to the writer: a whole batch; a request's records ahead of its decisions; the
#: decisions of the records sent ahead; the request failed, drop its records.
_BATCH, _RECORDS, _DECIDE, _ABANDON = "batch", "records", "decide", "abandon"
#: Answers to records: their canonical JSON texts, or what failed.
_TEXTS, _FAILED = "texts", "failed"
#: The fields of a batch sent with its decisions (ids and records went ahead).
_DECIDED = ("request_id", "detector", "model_name", "model_version", "threshold", "scores",
            "flagged", "explanations", "key_id", "run_id", "features_version")
#: Pipe buffer asked for: a 1,000-decision batch pickles to about 400 kB.
PIPE_BYTES = 1 << 20
log = logging.getLogger(__name__)


class AuditWriteError(RuntimeError):
    """The audit log did not take a batch (the writer's error, or the writer is gone)."""


class AuditWriter:
    """Appends decision batches to the audit log at ``url`` in a child process, one at a time.

    :meth:`submit` hands a batch over and returns a function that waits until it is committed
    (raising :class:`AuditWriteError` if it was not); that function must be called, and until
    then other threads wait to submit. :meth:`prepare` may hand a request's ids and records
    over earlier, before it is scored: the writer hashes and encodes them meanwhile, and the
    request's :meth:`submit` (or :meth:`abandon`) follows. A writer that died is started again
    by the next request.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._send: Connection | None = None
        self._receive: Connection | None = None
        self._prepared: tuple[Sequence[str], list[str] | None] | None = None
        self._start()

    def prepare(self, decision_ids: Sequence[str], records: pd.DataFrame) -> None:
        """Hand a request's decision ids and typed records over before it is scored: the
        writer writes the records' canonical JSON (:meth:`texts`), then digests and encodes
        them. The writer is the request's until its :meth:`submit` or :meth:`abandon`."""
        self._lock.acquire()
        self._handover((_RECORDS, decision_ids, records), start=True)
        self._prepared = (decision_ids, None)

    def texts(self) -> list[str]:
        """The canonical JSON of the prepared records (:func:`frame_texts`), as the writer
        wrote them."""
        assert self._prepared is not None
        try:
            kind, answer = self._answer()
        except (EOFError, OSError) as error:
            self._stop()
            raise AuditWriteError(f"the audit writer exited before writing the records "
                                  f"({error or type(error).__name__})") from error
        self._prepared = (self._prepared[0], answer if kind == _TEXTS else [])  # answered
        if kind != _TEXTS:
            raise AuditWriteError(f"the audit writer could not write the records: {answer}")
        return answer

    def abandon(self) -> None:
        """The prepared request failed before its decisions were made: the writer drops its
        records."""
        prepared, self._prepared = self._prepared, None
        try:
            assert self._send is not None and self._receive is not None
            if prepared is not None and prepared[1] is None:
                self._answer()  # the texts the request did not wait for
            self._send.send((_ABANDON,))
        except (AssertionError, EOFError, OSError, ValueError):  # gone: the next one starts
            self._stop()
        finally:
            self._lock.release()

    def submit(self, batches: DecisionBatch | Sequence[DecisionBatch]) -> Callable[[], None]:
        """Hand one request's batch, or several requests' batches to commit together (one
        transaction, one ``fsync``), to the writer; returns the wait for their commit (call it
        once). After :meth:`prepare`, their ids and records, in order, must be the prepared
        ones."""
        batches = [batches] if isinstance(batches, DecisionBatch) else list(batches)
        prepared, self._prepared = self._prepared, None
        if prepared is None:
            self._lock.acquire()
            self._handover((_BATCH, batches), start=True)
        elif prepared[1] is not None and _same_records(batches, *prepared):
            self._handover((_DECIDE, [{name: getattr(batch, name) for name in _DECIDED}
                                      for batch in batches]))
        else:
            self._prepared = prepared
            self.abandon()
            raise ValueError("the batch's ids and records are not the prepared ones")
        return self._wait

    def _handover(self, message: tuple[Any, ...], start: bool = False) -> None:
        """Send a message (the lock held; released if it fails)."""
        try:
            if start and (self._process is None or self._process.poll() is not None):
                self._start()
            if self._send is None:
                raise AuditWriteError("the audit writer has exited")
            self._send.send(message)
        except BaseException as error:  # the writer may hold part of the message: replace it
            self._stop()
            self._prepared = None
            self._lock.release()
            raise AuditWriteError(f"could not hand decisions to the audit writer: "
                                  f"{error}") from error

    def _wait(self) -> None:
        try:
            answer = self._answer()
        except (EOFError, OSError) as error:
            self._stop()
            raise AuditWriteError(f"the audit writer exited before confirming the decisions "
                                  f"({error or type(error).__name__})") from error
        finally:
            self._lock.release()
        if answer is not None:
            raise AuditWriteError(f"the audit log refused the decisions: {answer}")

    def _answer(self) -> Any:
        """The writer's next answer; a writer silent for :data:`ANSWER_TIMEOUT_S` is stopped
        (its end is then an :class:`EOFError`)."""
        if self._receive is None:
            raise EOFError("the audit writer has exited")
        if not self._receive.poll(ANSWER_TIMEOUT_S):
            log.error("audit writer %d silent for %s s: stopping it",
                      self._process.pid if self._process else -1, ANSWER_TIMEOUT_S)
            self._stop()
            raise EOFError(f"no answer within {ANSWER_TIMEOUT_S} s")
        return self._receive.recv()

    def close(self) -> None:
        """Stop the writer (it finishes the batch in hand first)."""
        with self._lock:
            self._stop()

    def _start(self) -> None:
        """Start the child process and wait until it has opened the audit log."""
        self._stop()
        to_child, from_parent = os.pipe()
        _widen(from_parent)
        to_parent, from_child = os.pipe()
        _widen(to_parent)  # the records' texts come back while the features are computed
        path = os.pathsep.join(entry for entry in sys.path if entry)  # where we found ourselves
        process = subprocess.Popen(
            [sys.executable, "-m", "illicitflows.audit.writer", str(to_child), str(from_child)],
            pass_fds=(to_child, from_child), stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": path})
        os.close(to_child)
        os.close(from_child)
        self._process = process
        self._send = Connection(from_parent, readable=False)
        self._receive = Connection(to_parent, writable=False)
        self._finalizer = weakref.finalize(self, _end, process, self._send, self._receive)
        self._send.send(self.url)
        if not self._receive.poll(START_TIMEOUT_S):
            self._stop()
            raise AuditWriteError(f"the audit writer did not start within {START_TIMEOUT_S} s")
        answer = self._receive.recv()
        if answer != _READY:
            self._stop()
            raise AuditWriteError(f"the audit writer could not open the audit log: {answer}")

    def _stop(self) -> None:
        if self._process is not None:
            self._finalizer()
            self._process = self._send = self._receive = None


def _same_records(batches: Sequence[DecisionBatch], decision_ids: Sequence[str],
                  texts: Sequence[str]) -> bool:
    """Whether the batches' ids and records, in order, are these (the very lists when one
    batch was prepared)."""
    if len(batches) == 1 and batches[0].decision_ids is decision_ids:
        return batches[0].record_texts is texts
    return ([i for b in batches for i in b.decision_ids] == list(decision_ids)
            and [t for b in batches for t in b.record_texts] == list(texts))


def _widen(pipe: int) -> None:
    """Let a request's batch fit in the pipe at once, so handing it over does not wait for
    the writer to read (Linux; elsewhere the pipe keeps its size)."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or over pipe-max-size
        fcntl.fcntl(pipe, fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def _end(process: subprocess.Popen[bytes], send: Connection, receive: Connection) -> None:
    """Close the pipes (the writer then exits) and reap the process."""
    send.close()
    receive.close()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        log.error("audit writer %d did not exit; killing it", process.pid)
        process.kill()
        process.wait()


def serve(receive: Connection, send: Connection) -> None:
    """The writer's loop: open the log at the URL received first, then commit each batch."""
    try:
        audit = AuditLog(receive.recv())
    except Exception as error:  # told to the service, which names it
        send.send(f"{type(error).__name__}: {error}")
        return
    freeze_loaded()
    send.send(_READY)
    prepared: PreparedRecords | Exception | None = None
    try:
        while True:
            try:
                kind, *payload = receive.recv()
            except EOFError:  # the service is gone or closed the writer
                return
            if kind == _RECORDS:
                prepared = _prepared(send, *payload)
                continue
            if kind == _ABANDON:
                prepared = None
                continue
            send.send(_logged(audit, kind, payload, prepared))
            prepared = None
    finally:
        CHECKPOINTER.flush()
        audit.close()


def _prepared(send: Connection, decision_ids: Sequence[str],
              records: pd.DataFrame) -> PreparedRecords | Exception:
    """Write the records' canonical JSON and send it to the service at once, then digest and
    encode it for the chain (a failure is told now, and again when the decisions come)."""
    try:
        texts = frame_texts(records)
    except Exception as error:
        send.send((_FAILED, f"{type(error).__name__}: {error}"))
        return error
    send.send((_TEXTS, texts))
    try:
        return prepare_records(decision_ids, texts)
    except Exception as error:  # told when the decisions come
        return error


def _logged(audit: AuditLog, kind: str, payload: list[Any],
            prepared: PreparedRecords | Exception | None) -> str | None:
    """Log a batch (whole, or the decisions of the prepared records); None, or what failed."""
    try:
        if kind == _BATCH:
            audit.log_batches(payload[0])
            return None
        if not isinstance(prepared, PreparedRecords):
            raise prepared or RuntimeError("decisions came without their records")
        batches, start = [], 0
        for fields in payload[0]:
            stop = start + len(fields["scores"])
            batches.append(DecisionBatch(decision_ids=prepared.decision_ids[start:stop],
                                         record_texts=prepared.record_texts[start:stop],
                                         **fields))
            start = stop
        audit.log_batches(batches, prepared)
    except Exception as error:
        log.exception("audit append failed")
        return f"{type(error).__name__}: {error}"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description="Audit log writer (started by the service).")
    parser.add_argument("receive_fd", type=int)
    parser.add_argument("send_fd", type=int)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="audit-writer: %(levelname)s %(message)s")
    serve(Connection(args.receive_fd, writable=False), Connection(args.send_fd, readable=False))


if __name__ == "__main__":
    main()
