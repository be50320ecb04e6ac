"""The command line: --help everywhere, simulate, validate with quarantine."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from illicitflows.cli import app

runner = CliRunner()


def all_commands(command: typer.core.TyperGroup, prefix: tuple[str, ...] = ()) -> list:
    found = [prefix]
    for name, sub in getattr(command, "commands", {}).items():
        found += all_commands(sub, (*prefix, name))
    return found


@pytest.mark.parametrize("path", all_commands(get_command(app)), ids=" ".join)
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_simulate_then_validate_quarantines_bad_rows(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ILLICITFLOWS_DATA_DIR", str(tmp_path / "data"))
    result = runner.invoke(app, ["simulate", "transactions", "--out", str(tmp_path / "tx"),
                                 "--accounts", "500", "--days", "3"])
    assert result.exit_code == 0, result.output
    csv = tmp_path / "tx" / "transactions.csv"
    lines = csv.read_text().splitlines()
    fields = lines[5].split(",")
    fields[6] = "Doubloon"  # Receiving Currency
    lines[5] = ",".join(fields)
    csv.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["validate", "transactions", str(csv), "--out",
                                 str(tmp_path / "ok.parquet")])
    assert result.exit_code == 0, result.output
    quarantined = pd.read_csv(tmp_path / "data" / "quarantine" / "transactions.quarantine.csv")
    assert quarantined["_row"].tolist() == [4]  # lines[5] is data row 4
    assert "currency" in quarantined["_issues"].iloc[0]
    assert len(pd.read_parquet(tmp_path / "ok.parquet")) == len(lines) - 2
    strict = runner.invoke(app, ["validate", "transactions", str(csv), "--strict"])
    assert strict.exit_code == 1
    assert "row 4, column receiving_currency" in strict.output
