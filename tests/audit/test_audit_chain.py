"""Canonical JSON and the hash chain, without a database."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from illicitflows.audit.canonical import (
    canonical_json,
    dumps,
    frame_texts,
    jsonable,
    sha256_hex,
)
from illicitflows.audit.chain import (
    GENESIS_HASH,
    HASHED_FIELDS,
    ChainWalker,
    chain_columns,
    row_hash,
)


def test_canonical_json_is_sorted_and_compact() -> None:
    assert canonical_json({"b": 1, "a": [1.5, None, True], "c": "é"}) == \
        '{"a":[1.5,null,true],"b":1,"c":"\\u00e9"}'


def test_canonical_json_normalises_values() -> None:
    paris = timezone(timedelta(hours=2))
    value = {1: np.int64(7), "f": np.float32(0.5), "nan": float("nan"), "t": (1, 2),
             "naive": datetime(2022, 9, 1, 8, 0), "day": date(2022, 9, 1),
             "aware": datetime(2022, 9, 1, 10, 0, tzinfo=paris), "arr": np.array([1, 2])}
    assert jsonable(value) == {
        "1": 7, "f": 0.5, "nan": None, "t": [1, 2], "naive": "2022-09-01T08:00:00",
        "aware": "2022-09-01T08:00:00+00:00", "day": "2022-09-01", "arr": [1, 2]}
    assert jsonable({"when": datetime(2022, 9, 1, 8, tzinfo=UTC)}) == \
        jsonable({"when": datetime(2022, 9, 1, 10, tzinfo=paris)})


def test_canonical_json_rejects_unknown_types() -> None:
    with pytest.raises(TypeError):
        canonical_json({"x": object()})


def chain(n: int) -> list[dict]:
    rows, prev = [], GENESIS_HASH
    for seq in range(1, n + 1):
        record = canonical_json({"amount": seq})
        row = {name: None for name in HASHED_FIELDS}
        row.update(seq=seq, decision_id=f"d{seq}", record=record, score=0.5, prev_hash=prev,
                   record_sha256=hashlib.sha256(record.encode()).hexdigest())
        row["row_hash"] = prev = row_hash(prev, row)
        rows.append(row)
    return rows


def test_row_hash_covers_every_field() -> None:
    row = chain(1)[0]
    for name in HASHED_FIELDS:
        assert row_hash(GENESIS_HASH, {**row, name: "changed"}) != row["row_hash"], name
    assert row_hash("1" * 64, row) != row["row_hash"]


@pytest.mark.parametrize("value", [None, True, False, 0, -7, 2**70, 0.1, -0.0, 1e-7, 1e22,
                                   "", "plain", "é\u2028\"\\\n", '{"a":[1,2.5]}', [1, "x"]])
def test_row_hash_is_sha256_of_the_canonical_json_of_the_row(value) -> None:
    row = {**chain(1)[0], "explanation": value, "key_id": value}
    body = dumps({name: row[name] for name in HASHED_FIELDS})
    assert row_hash(GENESIS_HASH, row) == sha256_hex(GENESIS_HASH + body)


def test_walker_accepts_a_good_chain_and_stops_at_the_first_break() -> None:
    rows = chain(4)
    walker = ChainWalker()
    assert all(walker.problem(row) is None for row in rows)
    assert (walker.checked, walker.last_hash, walker.last_decision_id) == (4, rows[3]["row_hash"],
                                                                           "d4")
    walker = ChainWalker()
    assert walker.problem(rows[0]) is None
    assert "seq gap" in walker.problem(rows[2])
    assert "prev_hash" in walker.problem({**rows[2], "seq": 2})
    assert walker.checked == 1


def test_chain_columns_gives_the_hashes_of_row_hash_in_order() -> None:
    """Shared objects are encoded once, equal but distinct ones (0.0 and -0.0 too) each time:
    the hashes are those of row_hash, whichever fields vary."""
    shared = {"key_id": "k%s{1}", "detector": "transactions", "threshold": 0.5,
              "created_at": "2026-01-01T00:00:00.000000+00:00"}
    expected = chain(6)
    for i, row in enumerate(expected):
        row.update(shared, score=[0.0, -0.0][i % 2], flagged=i % 3 == 0,
                   explanation=None if i % 2 else '{"x":"%d"}', run_id=float(i > 2))
    prev = GENESIS_HASH
    for row in expected:
        row["prev_hash"], row["row_hash"] = prev, row_hash(prev, row)
        prev = row["row_hash"]
    for rows in (expected, expected[:1], [expected[0], {**expected[0]}]):
        columns = {name: [row[name] for row in rows] for name in HASHED_FIELDS}
        prevs, hashes = chain_columns(rows[0]["prev_hash"], columns)
        assert prevs == [rows[0]["prev_hash"], *hashes[:-1]]
        assert hashes == [row_hash(p, row) for p, row in zip(prevs, rows, strict=True)]
    assert chain_columns("a" * 64, {name: [] for name in HASHED_FIELDS}) == ([], [])
    columns = {name: [row[name] for row in expected] for name in HASHED_FIELDS}
    assert chain_columns(GENESIS_HASH, columns)[1] == [r["row_hash"] for r in expected]


ODD_VALUES = [None, True, False, 0, -7, 2**70, 0.1, -0.0, 1e-7, 1e16, 1e22, 2.5, "", "plain",
              "é\u2028\"\\\n", "100%", '{"a":[1,2.5]}', "\udcff"]


def test_frame_texts_write_the_canonical_json_of_each_row() -> None:
    """Column by column, numpy and C-speed paths included, the texts of canonical_json of
    each row as a dict of its values (NaN, NaT and NA null; times ISO; odd text escaped)."""
    rng = np.random.default_rng(3)
    rows = 40
    odd = np.empty(rows, dtype=object)
    odd[:] = [ODD_VALUES[i] for i in rng.integers(len(ODD_VALUES), size=rows)]
    times = pd.Series(pd.to_datetime("2022-09-01") + pd.to_timedelta(
        rng.integers(0, 10**6, size=rows), unit="s")).astype("datetime64[ns]")
    frame = pd.DataFrame({
        "odd": odd, "a%s": rng.normal(size=rows) * 1e3, "é": times,
        "fraction": times + pd.Timedelta(milliseconds=5), "n": rng.integers(-5, 5, size=rows),
        "b": rng.random(rows) < 0.5, "s": pd.Series(["x\"%"] * rows, dtype=object),
        "flag": pd.array([1, None] * (rows // 2), dtype="Int8"),
        "no label": pd.array([None] * rows, dtype="Int8"),
        "aware": pd.to_datetime(times).dt.tz_localize("Europe/Paris"),
        "uniform": pd.Series([ODD_VALUES[-2]] * rows, dtype=object),
    })
    frame.loc[::7, "a%s"] = np.nan
    frame.loc[::9, "a%s"] = np.inf
    frame.loc[::5, "é"] = pd.NaT
    frame.loc[::3, "s"] = pd.NA
    expected = [canonical_json(dict(zip(frame.columns, row, strict=True)))
                for row in zip(*(frame[name].tolist() for name in frame.columns), strict=True)]
    assert frame_texts(frame) == expected
    assert frame_texts(frame.iloc[:0]) == []
