"""The serving path's bulk conversions give what their one-value-at-a-time versions give:
record ids and decision ids, event times, roll-ups, risk bands, unknown fields."""

from __future__ import annotations

import time
import uuid
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from illicitflows.audit.canonical import jsonable, plain_values
from illicitflows.ids import uuid7_texts
from illicitflows.serving.engine import risk_bands
from illicitflows.serving.rollups import roll_up
from illicitflows.transactions.schema import TRANSACTION_SCHEMA


@pytest.mark.parametrize("count", [0, 1, 1000])
def test_uuid7_texts_are_canonical_time_ordered_uuids(count: int) -> None:
    before = time.time_ns() // 1_000_000
    texts = uuid7_texts(count)
    after = time.time_ns() // 1_000_000
    later = uuid7_texts(1)
    assert len(texts) == len(set(texts)) == count and texts == sorted(texts)
    for text in texts:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert before <= parsed.int >> 80 <= after  # the first 48 bits: Unix milliseconds
    time.sleep(0.002)
    assert all(text < uuid7_texts(1)[0] for text in [*texts, *later])


FRAMES = {
    "floats": pd.DataFrame({"a": [1.5, np.nan, np.inf, -np.inf, -0.0, 2.0**60]}),
    "whole seconds": pd.DataFrame({"t": pd.to_datetime(["2022-09-01 00:20:00", None,
                                                        "1700-01-01 23:59:59"]).as_unit("ns")}),
    "microseconds unit": pd.DataFrame({"t": pd.to_datetime(["2022-09-01 00:20:00", None])
                                       .as_unit("us")}),
    "fractions": pd.DataFrame({"t": pd.to_datetime(["2022-09-01 00:20:00.5",
                                                    "2022-09-01 00:20:00.000000001"])}),
    "aware": pd.DataFrame({"t": pd.to_datetime(["2022-09-01 00:20:00+02:00", None], utc=True)}),
    "no time": pd.DataFrame({"t": pd.Series([pd.NaT, pd.NaT], dtype="datetime64[ns]")}),
    "text and flags": pd.DataFrame({"s": pd.Series(["x", pd.NA], dtype=object),
                                    "f": pd.array([1, None], dtype="Int8"),
                                    "g": pd.array([0.5, None], dtype="Float64")}),
}


@pytest.mark.parametrize("name", FRAMES)
def test_plain_values_are_the_canonical_values_of_each_column(name: str) -> None:
    frame = FRAMES[name]
    for column in frame.columns:
        expected = jsonable(frame[column].tolist())  # value by value
        got = plain_values(frame[column])
        assert got == expected and list(map(type, got)) == list(map(type, expected))


def test_roll_up_counts_each_key_once_per_record_and_families_of_flagged_ones() -> None:
    senders, receivers = ["a", "a", "c"], ["b", "a", "b"]
    reasons = [[{"family": "fan-in"}, {"family": "structuring"}], [],
               [{"family": "fan-in"}]]
    rolled = roll_up([senders, receivers], [0.9, 0.2, 0.4], [True, False, False], reasons)
    assert rolled == [
        {"key": "a", "records": 2, "max_score": 0.9, "mean_score": (0.9 + 0.2) / 2,
         "flagged": 1, "top_reasons": ["fan-in", "structuring"]},
        {"key": "b", "records": 2, "max_score": 0.9, "mean_score": (0.9 + 0.4) / 2,
         "flagged": 1, "top_reasons": ["fan-in", "structuring"]},
        {"key": "c", "records": 1, "max_score": 0.4, "mean_score": 0.4, "flagged": 0,
         "top_reasons": []}]
    assert roll_up([[], []], [], [], []) == []


def test_roll_up_matches_a_record_by_record_reference() -> None:
    """Random batches with repeated keys, self-transfers, ties and flagged records: the same
    entries, values and order as a plain Python pass over the records."""
    rng = np.random.default_rng(7)
    families = ["fan-in", "fan-out", "structuring", "cycle"]
    for rows in (1, 50, 400):
        senders = [f"k{i}" for i in rng.integers(0, rows // 3 + 2, size=rows)]
        receivers = [f"k{i}" for i in rng.integers(0, rows // 3 + 2, size=rows)]
        scores = np.round(rng.random(rows), 2).tolist()  # ties in max score
        flagged = [s >= 0.8 for s in scores]
        reasons = [[{"family": f} for f in rng.choice(families, size=2)] if hit else []
                   for hit in flagged]
        found: dict[str, list[int]] = {}
        for row, pair in enumerate(zip(senders, receivers, strict=True)):
            for key in dict.fromkeys(pair):
                found.setdefault(key, []).append(row)
        expected = sorted(({
            "key": key, "records": len(rows_of), "max_score": max(scores[r] for r in rows_of),
            "mean_score": sum(scores[r] for r in rows_of) / len(rows_of),
            "flagged": sum(flagged[r] for r in rows_of),
            "top_reasons": [f for f, _ in Counter(
                x["family"] for r in rows_of if flagged[r] for x in reasons[r]).most_common(3)],
        } for key, rows_of in found.items()), key=lambda e: (-e["max_score"], e["key"]))
        assert roll_up([senders, receivers], scores, flagged, reasons) == expected


def test_validate_names_unknown_fields_drops_null_ones_and_fills_ids(
        tmp_path, transactions, api_records, tx_detector, tx_model) -> None:
    from tests.serving.test_engine import scorer

    records = api_records(transactions.iloc[:4])
    records[0]["id"] = "given"
    records[1]["colour"] = None  # unknown but empty: dropped silently
    engine = scorer(tmp_path, tx_detector, tx_model)
    frame = engine.validate(records)
    assert list(frame.columns) == TRANSACTION_SCHEMA.columns
    assert frame["id"].iloc[0] == "given"
    assert all(uuid.UUID(i).version == 7 for i in frame["id"].iloc[1:])
    assert "id" not in records[1] and "colour" in records[1]  # the caller's dicts untouched
    records[2]["colour"] = "red"
    with pytest.raises(ValueError, match="unknown field"):
        engine.validate(records)


def test_risk_bands_split_at_half_the_threshold_the_threshold_and_halfway_to_one() -> None:
    scores = [0.0, 0.1999, 0.2, 0.3999, 0.4, 0.6999, 0.7, 1.0]
    assert risk_bands(scores, 0.4) == ["low", "low", "medium", "medium", "high", "high",
                                       "critical", "critical"]
    assert risk_bands(np.array([]), 0.4) == []
