"""The analysts' queue: logged decisions newest first, filtered by time, detector, model
version, score range, flag and latest disposition status, one page at a time, with counts."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from illicitflows.audit.dispositions import FLAGGED, STATUSES, dispositions
from illicitflows.audit.schema import decisions, logged, requests
from illicitflows.audit.store import MAX_PAGE_SIZE, utc_iso

#: The disposition filter's value for decisions nobody has dispositioned yet.
UNREVIEWED = "none"


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """What the queue shows; every field optional (None: no filter)."""

    from_time: datetime | str | None = None
    to_time: datetime | str | None = None
    detector: str | None = None
    model_version: str | None = None
    min_score: float | None = None
    max_score: float | None = None
    flagged: bool | None = True
    disposition: str | None = None

    def __post_init__(self) -> None:
        if self.disposition not in (None, UNREVIEWED, *STATUSES):
            raise ValueError(f"disposition must be one of {sorted(STATUSES)} or "
                             f"{UNREVIEWED!r}, got {self.disposition!r}")
        for name in ("from_time", "to_time"):
            value = getattr(self, name)
            if isinstance(value, str) and value:
                try:
                    datetime.fromisoformat(value)
                except ValueError as error:
                    raise ValueError(f"{name}: not an ISO date or date-time: {value!r}") from error


@dataclass(frozen=True, slots=True)
class QueuePage:
    """One page of the queue, newest first; ``counts``: matching decisions by latest
    disposition status (``none`` for undispositioned ones), ignoring the status filter."""

    items: list[dict[str, Any]]
    total: int
    page: int
    page_size: int
    counts: dict[str, int] = field(default_factory=dict)


_LATEST = (sa.select(dispositions.c.decision_id, dispositions.c.status)
           .where(dispositions.c.seq.in_(sa.select(sa.func.max(dispositions.c.seq))
                                         .group_by(dispositions.c.decision_id)))
           .subquery("latest"))


def _where(queue: QueueFilter) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    if queue.from_time:
        where.append(requests.c.created_at >= utc_iso(queue.from_time))
    if queue.to_time:
        where.append(requests.c.created_at < utc_iso(queue.to_time))
    if queue.detector:
        where.append(requests.c.detector == queue.detector)
    if queue.model_version:
        where.append(requests.c.model_version == queue.model_version)
    if queue.min_score is not None:
        where.append(decisions.c.score >= queue.min_score)
    if queue.max_score is not None:
        where.append(decisions.c.score <= queue.max_score)
    if queue.flagged:
        where.append(FLAGGED)  # the alerts' partial index
    elif queue.flagged is not None:
        where.append(decisions.c.flagged.is_(False))
    return where


def _status_where(status: str | None) -> list[sa.ColumnElement[bool]]:
    if status is None:
        return []
    if status == UNREVIEWED:
        return [_LATEST.c.status.is_(None)]
    return [_LATEST.c.status == status]


def queue_page(engine: Engine, queue: QueueFilter, page: int = 1, page_size: int = 50,
               oldest_first: bool = False, explanations: bool = True) -> QueuePage:
    """One page of the queue (newest first unless ``oldest_first``) with the total and the
    counts by status; without ``explanations`` the lines leave them out (a flagged decision's
    explanation, every feature's contribution, is most of the time spent reading a page)."""
    if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page must be >= 1 and page_size in 1..{MAX_PAGE_SIZE}")
    base = logged.add_columns(_LATEST.c.status.label("disposition")).outerjoin_from(
        decisions, _LATEST, _LATEST.c.decision_id == decisions.c.decision_id)
    where = _where(queue)
    with engine.connect() as connection:
        matching = base.where(*where).subquery()
        counted = connection.execute(
            sa.select(matching.c.disposition, sa.func.count())
            .group_by(matching.c.disposition)).all()
        counts = {status: 0 for status in (UNREVIEWED, *sorted(STATUSES))}
        counts.update({status or UNREVIEWED: int(n) for status, n in counted})
        total = (counts.get(queue.disposition, 0) if queue.disposition else
                 sum(counts.values()))
        rows = connection.execute(base.where(*where, *_status_where(queue.disposition))
                                  .order_by(decisions.c.seq if oldest_first
                                            else decisions.c.seq.desc())
                                  .limit(page_size).offset((page - 1) * page_size)).mappings()
        items = [_item(row, explanations) for row in rows]
    return QueuePage(items=items, total=total, page=page, page_size=page_size, counts=counts)


def _item(row: Any, explanations: bool) -> dict[str, Any]:
    """A queue line: the logged decision (as the decisions API gives it) with its latest
    disposition status and its record's id."""
    item = dict(row)
    item["record"] = json.loads(row["record"])
    text = row["explanation"]
    item["explanation"] = json.loads(text) if explanations and text is not None else None
    item["disposition"] = row["disposition"] or UNREVIEWED
    item["record_id"] = item["record"].get("id") or item["record"].get("declaration_id")
    return item


def model_versions(engine: Engine, limit: int = 50) -> list[str]:
    """The model versions that made logged decisions (for the queue's filter), newest first."""
    with engine.connect() as connection:
        rows = connection.execute(sa.select(requests.c.model_version,
                                            sa.func.max(requests.c.first_seq).label("last"))
                                  .group_by(requests.c.model_version)
                                  .order_by(sa.literal_column("last").desc()).limit(limit))
        return [row.model_version for row in rows]
