"""Transaction loaders and writers: IBM AMLworld CSV, Parquet, AMLSim; the bad-input matrix."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from illicitflows.transactions.io import (
    detect_format,
    format_ibm_lines,
    load_transactions,
    write_ibm_csv,
)
from illicitflows.transactions.schema import COLUMNS
from illicitflows.validation import SchemaError, ValidationError

IBM_LINES = (
    "Timestamp,From Bank,Account,To Bank,Account,Amount Received,Receiving Currency,"
    "Amount Paid,Payment Currency,Payment Format,Is Laundering"
)
GOOD = "2022/09/01 00:20,010,8000EBD30,00123,8000F5340,100.00,US Dollar,100.00,US Dollar,ACH,0"


def write_lines(path: Path, rows: list[str], header: str = IBM_LINES) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_ibm_fixture_loads_with_duplicate_account_header(fixtures: Path) -> None:
    loaded = load_transactions(fixtures / "transactions" / "ibm_small.csv")
    frame = loaded.frame
    assert list(frame.columns) == COLUMNS
    assert len(frame) == 8
    assert frame.loc[1, "from_bank"] == "03208"  # zero-padded bank ids stay text
    assert frame.loc[1, "to_account"] == "8000F5340"
    assert frame.loc[6, "amount_received"] == pytest.approx(1389.38)
    assert frame.loc[6, "receiving_currency"] == "Euro"
    assert frame["is_laundering"].tolist() == [0] * 7 + [1]
    assert pd.Timestamp("2022-09-01 00:20") == frame.loc[0, "timestamp"]
    assert loaded.validation.warnings["row"].tolist() == [0, 2, 3, 4, 5, 6, 7]  # self-transfers


def test_label_column_is_optional_when_scoring(tmp_path: Path) -> None:
    header = IBM_LINES.rsplit(",", 1)[0]
    path = write_lines(tmp_path / "t.csv", [GOOD.rsplit(",", 1)[0]], header)
    frame = load_transactions(path).frame
    assert "is_laundering" not in frame.columns
    assert len(frame) == 1


def test_round_trip_write_then_load_is_identical(fixtures: Path, tmp_path: Path) -> None:
    original = load_transactions(fixtures / "transactions" / "ibm_small.csv").frame
    path = write_ibm_csv(original, tmp_path / "out.csv")
    assert path.read_text().splitlines()[0] == IBM_LINES
    pd.testing.assert_frame_equal(load_transactions(path).frame, original)
    original.to_parquet(tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(load_transactions(tmp_path / "t.parquet").frame, original)


def test_format_ibm_lines_matches_the_csv_rows(fixtures: Path, tmp_path: Path) -> None:
    frame = load_transactions(fixtures / "transactions" / "ibm_small.csv").frame
    rows = write_ibm_csv(frame, tmp_path / "o.csv").read_text().splitlines()[1:]
    assert format_ibm_lines(frame) == rows


@pytest.mark.parametrize(("row", "column", "reason"), [
    (GOOD.replace("100.00,US Dollar,100.00", "100.00,US Dollar,-5"), "amount_paid",
     "negative value"),
    (GOOD.replace("100.00,US Dollar,100.00", ",US Dollar,100.00"), "amount_received",
     "missing value"),
    (GOOD.replace("2022/09/01 00:20", "2022/13/45 99:99"), "timestamp", "unparseable timestamp"),
    (GOOD.replace("100.00,US Dollar,ACH", "100.00,Doubloon,ACH"), "payment_currency",
     "unknown payment currency"),
    (GOOD.replace("ACH", "Pigeon"), "payment_format", "unknown payment format"),
    (GOOD.replace("8000EBD30,", ",", 1), "from_account", "missing value"),
])
def test_bad_rows_are_quarantined_with_row_and_column(tmp_path: Path, row: str, column: str,
                                                      reason: str) -> None:
    path = write_lines(tmp_path / "t.csv", [GOOD, row, GOOD])
    quarantine = tmp_path / "q.csv"
    loaded = load_transactions(path, quarantine=quarantine)
    assert len(loaded.frame) == 2
    errors = loaded.validation.errors
    assert errors[["row", "column", "reason"]].values.tolist() == [[1, column, reason]]
    assert pd.read_csv(quarantine)["_row"].tolist() == [1]
    with pytest.raises(ValidationError, match=f"row 1, column {column}: {reason}"):
        load_transactions(path, strict=True)


def test_not_an_ibm_file_is_refused(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "t.csv", ["1,2,3"], header="a,b,c")
    with pytest.raises(SchemaError, match="not an IBM AMLworld"):
        load_transactions(path)


@pytest.mark.parametrize("accounts_file", ["nodes.csv", "accounts.csv"])
def test_amlsim_marks_laundering_when_both_ends_are_flagged(fixtures: Path,
                                                            accounts_file: str) -> None:
    folder = fixtures / "amlsim"
    assert detect_format(folder / "transactions.csv") == "amlsim"
    loaded = load_transactions(folder / "transactions.csv", accounts=folder / accounts_file)
    assert loaded.frame["is_laundering"].tolist() == [1, 0, 0, 0, 1]
    assert loaded.frame["timestamp"].dt.day.tolist() == [1, 2, 2, 3, 4]
    labels = loaded.accounts
    assert labels.set_index("account")["is_laundering"].to_dict() == {
        "0": 1, "1": 1, "2": 0, "3": 0, "4": 1, "5": 1}


def test_amlsim_without_accounts_file_says_so(fixtures: Path) -> None:
    with pytest.raises(SchemaError, match="--accounts"):
        load_transactions(fixtures / "amlsim" / "transactions.csv")


def test_amlsim_published_sample_columns_load_with_their_transaction_labels(
        tmp_path: Path) -> None:
    (tmp_path / "transactions.csv").write_text(
        "TX_ID,SENDER_ACCOUNT_ID,RECEIVER_ACCOUNT_ID,TX_TYPE,TX_AMOUNT,TIMESTAMP,IS_FRAUD,"
        "ALERT_ID\n1,0,1,TRANSFER,465.05,0,False,-1\n2,1,2,TRANSFER,570.25,3,True,1\n")
    (tmp_path / "accounts.csv").write_text(
        "ACCOUNT_ID,CUSTOMER_ID,INIT_BALANCE,COUNTRY,ACCOUNT_TYPE,IS_FRAUD,TX_BEHAVIOR_ID\n"
        "0,C0,100,US,I,False,1\n1,C1,100,US,I,True,1\n2,C2,100,US,I,True,1\n")
    loaded = load_transactions(tmp_path / "transactions.csv", accounts=tmp_path / "accounts.csv")
    assert loaded.frame["is_laundering"].tolist() == [0, 1]
    assert loaded.frame["timestamp"].dt.day.tolist() == [1, 4]
    assert loaded.accounts["is_laundering"].tolist() == [0, 1, 1]
