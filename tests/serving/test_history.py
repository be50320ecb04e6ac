"""The history store finds a decision's row by its event time and id, with no index on the
random decision ids (appends stay at the end of every index); on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

from illicitflows.audit.canonical import canonical_json
from illicitflows.serving.history import HistoryStore


def store_with(url: str, times: list[str]) -> tuple[HistoryStore, list[int]]:
    store = HistoryStore(url, "transactions")
    ids = [f"d{i}" for i in range(len(times))]
    seqs = store.append([canonical_json({"id": f"r{i}", "timestamp": t})
                         for i, t in enumerate(times)],
                        [f"r{i}" for i in range(len(times))], ids, times,
                        [0.5] * len(times), [False] * len(times))
    return store, seqs


def test_decisions_are_found_by_event_time_and_id(database_url: str) -> None:
    times = ["2022-09-01T00:00:00", "2022-09-01T00:00:00", "2022-09-01T00:01:00"]
    store, seqs = store_with(database_url, times)
    assert [store.seq_of(f"d{i}", t) for i, t in enumerate(times)] == seqs
    assert store.seq_of("d0", "2022-09-01T00:01:00") is None  # another time: not found
    assert store.seq_of("d9", times[0]) is None
    assert store.held({"d0": times[0], "d2": times[2], "d1": times[2], "d9": times[0]}) == \
        {"d0", "d2"}


def test_only_event_times_are_indexed(tmp_path) -> None:
    store, _ = store_with(f"sqlite:///{tmp_path / 'history.db'}", ["2022-09-01T00:00:00"])
    indexed = {column for index in sa.inspect(store.engine).get_indexes(store.table.name)
               for column in index["column_names"]}
    assert indexed == {"event_time"}
    with store.engine.connect() as connection:
        plan = connection.exec_driver_sql(
            f"EXPLAIN QUERY PLAN SELECT seq FROM {store.table.name} "
            "WHERE event_time = 'x' AND decision_id = 'y'").all()
    assert "USING INDEX" in plan[0][-1]


def test_appends_load_and_take_back_in_order(database_url: str) -> None:
    times = [f"2022-09-01T00:0{i}:00" for i in range(4)]
    store, seqs = store_with(database_url, times)
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    more = store.append([canonical_json({"id": "r9", "timestamp": "2022-09-01T00:09:00"})],
                        ["r9"], ["d9"], ["2022-09-01T00:09:00"], [0.9], [True])
    assert more[0] > seqs[-1]
    assert list(store.load()["id"]) == ["r0", "r1", "r2", "r3", "r9"]
    assert list(store.load(since=times[2])["id"]) == ["r2", "r3", "r9"]
    store.remove(more)
    assert store.remove_after(seqs[1]) == 2
    assert list(store.load()["id"]) == ["r0", "r1"]
    assert store.latest_time() == times[1]
