"""Micro-batching: requests that arrive together are scored together.

Each detector has one scoring thread fed by a queue. It takes the first waiting request, then
whatever else arrives within ``max_wait_s`` (2 ms by default), up to ``max_records`` records,
and scores them as one micro-batch (:meth:`~illicitflows.serving.engine.Scorer.score_batch`):
validation, features, predictions and explanations once, one audit commit (one ``fsync``) for
all of them. Each request's future is resolved only after that commit, so an answer still
means the decisions are durably logged; each request's result is the one scoring it alone, in
arrival order, would give. The HTTP event loop only parses and waits, so it goes on taking
requests while a micro-batch is scored.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from illicitflows.serving.engine import DecisionLog, ScoredBatch, Scorer, ScoreRequest

log = logging.getLogger("illicitflows.serving")


@dataclass(frozen=True)
class BatchLimits:
    """How long the first request of a micro-batch waits for others, and how many records a
    micro-batch holds at most (a larger request is scored alone)."""

    max_wait_s: float = 0.002
    max_records: int = 2_000


class _ClosedError(Exception):
    """The batcher was closed: its thread ends."""


class UnavailableError(RuntimeError):
    """The detector went out of service while the request waited."""


class MicroBatcher:
    """Scores a scorer's requests in micro-batches on a thread of its own."""

    def __init__(self, scorer: Scorer, new_log: Callable[[], DecisionLog],
                 limits: BatchLimits | None = None) -> None:
        self.scorer = scorer
        self.new_log = new_log
        self.limits = limits or BatchLimits()
        self._queue: queue.SimpleQueue[tuple[ScoreRequest, Future[ScoredBatch]] | None] = (
            queue.SimpleQueue())
        self._closed = False
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"scorer-{scorer.detector.domain}")
        self._thread.start()

    def submit(self, request: ScoreRequest) -> Future[ScoredBatch]:
        """Queue a request; its future holds the scored batch once its decisions are
        durably logged, or the error that refused it."""
        future: Future[ScoredBatch] = Future()
        if self._closed:
            future.set_exception(UnavailableError("this detector's scorer was replaced"))
        else:
            self._queue.put((request, future))
        return future

    def close(self, timeout_s: float = 30.0) -> None:
        """Score what is queued, then stop the thread."""
        self._closed = True
        self._queue.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)

    def stop(self, problem: str) -> None:
        """The scorer is out of service: refuse what is queued (:class:`UnavailableError`)
        and stop the thread after the micro-batch in hand."""
        self._closed = True
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[1].set_exception(UnavailableError(problem))
        self._queue.put(None)

    def _run(self) -> None:
        carried: list[tuple[ScoreRequest, Future[ScoredBatch]]] = []
        while True:
            try:
                batch = self._next(carried)
            except _ClosedError:
                return
            try:
                deferred = set(map(id, self.scorer.score_batch([r for r, _ in batch],
                                                               self.new_log())))
            except Exception as error:  # the log could not even be opened: all refused
                log.exception("micro-batch failed")
                for request, _ in batch:
                    request.error = error
                deferred = set()
            carried[:0] = [(r, f) for r, f in batch if id(r) in deferred]
            for request, future in batch:
                if id(request) in deferred:
                    continue
                if request.error is not None:
                    future.set_exception(request.error)
                else:
                    future.set_result(request.outcome())

    def _next(self, carried: list[tuple[ScoreRequest, Future[ScoredBatch]]],
              ) -> list[tuple[ScoreRequest, Future[ScoredBatch]]]:
        """The next micro-batch: requests carried over (``carried`` is emptied), else the
        first queued one, then those arriving within the wait, up to the record limit (the
        first beyond it is carried over)."""
        batch = list(carried)
        carried.clear()
        if not batch:
            first = self._queue.get()
            if first is None:
                raise _ClosedError
            batch.append(first)
        records = sum(len(request.records) for request, _ in batch)
        deadline = time.monotonic() + self.limits.max_wait_s
        while records < self.limits.max_records:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is None:  # closing: score this batch, then stop
                self._queue.put(None)
                break
            if records + len(item[0].records) > self.limits.max_records:
                carried.append(item)  # the first of the next micro-batch
                break
            batch.append(item)
            records += len(item[0].records)
        return batch
