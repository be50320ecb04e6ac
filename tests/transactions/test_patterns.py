"""IBM patterns.txt: writing, reading (with IBM's header suffixes) and labelling typologies."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from illicitflows.transactions.io import load_transactions, write_ibm_csv
from illicitflows.transactions.patterns import (
    label_typologies,
    read_patterns,
    write_patterns,
)
from illicitflows.transactions.schema import COLUMNS
from illicitflows.transactions.simulate import (
    SimulatedTransactions,
    SimulationConfig,
    simulate_transactions,
)

IBM_BLOCKS = """BEGIN LAUNDERING ATTEMPT - FAN-OUT:  Max 16-degree Fan-Out
2022/09/01 00:06,021174,800737690,012,80011F990,2848.96,Euro,2848.96,Euro,ACH,1
2022/09/01 04:33,021174,800737690,020,80020C5B0,8630.40,Euro,8630.40,Euro,ACH,1
END LAUNDERING ATTEMPT - FAN-OUT

BEGIN LAUNDERING ATTEMPT - CYCLE:  Max 12 hops
2022/09/02 11:00,0110,8000F75E0,0110,8000F75E0,0.48,Bitcoin,0.48,Bitcoin,Bitcoin,1
END LAUNDERING ATTEMPT - CYCLE
"""


@pytest.fixture(scope="module")
def sim() -> SimulatedTransactions:
    return simulate_transactions(SimulationConfig(accounts=3_000, days=7, laundering_rate=0.004,
                                                  seed=5))


def test_round_trip_recovers_rows_and_typologies(sim: SimulatedTransactions,
                                                 tmp_path: Path) -> None:
    path = write_patterns(sim.frame, tmp_path / "patterns.txt")
    patterns = read_patterns(path)
    laundering = sim.frame[sim.frame["attempt_id"] >= 0]
    expected = laundering.sort_values("attempt_id", kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(patterns[COLUMNS], expected[COLUMNS], check_dtype=False)
    assert patterns["typology"].tolist() == expected["typology"].tolist()
    by_attempt = patterns.groupby("attempt_id")["typology"].agg(["first", "nunique", "size"])
    assert (by_attempt["nunique"] == 1).all()
    assert by_attempt["size"].tolist() == sim.attempts["n_transactions"].tolist()
    assert by_attempt["first"].tolist() == sim.attempts["typology"].tolist()


def test_blocks_are_ibm_formatted(sim: SimulatedTransactions, tmp_path: Path) -> None:
    lines = write_patterns(sim.frame, tmp_path / "patterns.txt").read_text().splitlines()
    first = sim.attempts.iloc[0]
    assert lines[0] == f"BEGIN LAUNDERING ATTEMPT - {first['typology']}"
    assert lines[first["n_transactions"] + 1] == f"END LAUNDERING ATTEMPT - {first['typology']}"
    assert lines[first["n_transactions"] + 2] == ""
    row = lines[1].split(",")
    assert len(row) == len(COLUMNS) and row[-1] == "1"
    assert pd.Timestamp(row[0]) == pd.to_datetime(row[0], format="%Y/%m/%d %H:%M")


def test_reader_accepts_ibm_header_details(tmp_path: Path) -> None:
    path = tmp_path / "patterns.txt"
    path.write_text(IBM_BLOCKS)
    patterns = read_patterns(path)
    assert patterns["typology"].tolist() == ["FAN-OUT", "FAN-OUT", "CYCLE"]
    assert patterns["attempt_id"].tolist() == [0, 0, 1]
    assert patterns["from_bank"].tolist() == ["021174", "021174", "0110"]
    assert patterns.loc[1, "amount_paid"] == pytest.approx(8630.40)
    assert patterns.loc[2, "timestamp"] == pd.Timestamp("2022-09-02 11:00")
    assert pd.api.types.is_numeric_dtype(patterns["amount_received"])


def test_label_typologies_matches_the_simulation(sim: SimulatedTransactions,
                                                 tmp_path: Path) -> None:
    patterns = read_patterns(write_patterns(sim.frame, tmp_path / "patterns.txt"))
    labels = label_typologies(sim.frame[COLUMNS], patterns)
    assert labels.index.equals(sim.frame.index)
    assert labels.tolist() == sim.frame["typology"].tolist()


def test_label_typologies_on_a_read_back_csv(sim: SimulatedTransactions, tmp_path: Path) -> None:
    csv = write_ibm_csv(sim.frame[COLUMNS], tmp_path / "transactions.csv")
    patterns = read_patterns(write_patterns(sim.frame, tmp_path / "patterns.txt"))
    labels = label_typologies(load_transactions(csv).frame, patterns)
    laundering = sim.frame["is_laundering"].to_numpy() == 1
    assert (labels[laundering] == sim.frame.loc[laundering, "typology"]).all()


def test_label_typologies_takes_the_first_of_duplicate_matches(tmp_path: Path) -> None:
    path = tmp_path / "patterns.txt"
    path.write_text(IBM_BLOCKS + "\n" + IBM_BLOCKS.replace("FAN-OUT", "STACK"))
    patterns = read_patterns(path)
    transactions = patterns[COLUMNS].iloc[[2, 0]].reset_index(drop=True)
    extra = transactions.iloc[[0]].assign(amount_paid=1.0)
    labels = label_typologies(pd.concat([transactions, extra], ignore_index=True), patterns)
    assert labels.tolist() == ["CYCLE", "FAN-OUT", ""]
