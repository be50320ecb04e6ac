"""``illicitflows score`` goes through the service's engine: its scores and reasons for a file
equal what the service returns for the same records sent in order, from no history and from
a copy of the service's history (records the service decided answered with its decisions),
and the service's stores are left as they were."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from illicitflows.cli import app
from illicitflows.serving.arrival import Arrival
from illicitflows.serving.engine import ModelRef, TradeScorer
from illicitflows.serving.history import HistoryStore
from illicitflows.serving.offline import DryRunLog, HistorySource, score_file
from illicitflows.serving.runtime import Runtime, Settings

runner = CliRunner()


def service(root) -> Runtime:
    """A service's runtime on the stores of data directory ``root``."""
    return Runtime(Settings(history_url=f"sqlite:///{root / 'history.db'}",
                            audit_url=f"sqlite:///{root / 'audit.db'}",
                            keys_url=f"sqlite:///{root / 'keys.db'}", audit_writer="inline",
                            arrival=Arrival(clock_skew=None)))


def reasons(decision) -> str:
    if not decision.flagged or decision.explanation is None:
        return ""
    return " | ".join(f"{r.family}: {r.sentence}" for r in decision.explanation.reasons)


def test_cli_scores_a_file_as_the_service_with_its_history(
        tmp_path, transactions, api_records, tx_detector, champion) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    model = champion(tx_detector, uri)
    frame = transactions.iloc[:1400].assign(id=[f"tx-{i}" for i in range(1400)])
    records = [dict(r, id=i) for r, i in zip(api_records(frame), frame["id"], strict=True)]
    data = tmp_path / "service"
    data.mkdir()
    runtime = service(data)
    engine = runtime.add_scorer(tx_detector, model)
    for start in range(0, 600, 100):  # what the service decided before the file
        engine.score(records[start:start + 100], runtime.request_log())
    runtime.close()
    held = len(HistoryStore(f"sqlite:///{data / 'history.db'}", "transactions").load())
    # the file: 100 records the service decided, then 800 it has not seen, shuffled
    file_rows = frame.iloc[500:1400].sample(frac=1, random_state=0)
    path = tmp_path / "file.parquet"
    file_rows.to_parquet(path)
    out = tmp_path / "scored.csv"
    result = runner.invoke(app, ["score", "transactions", "--data", str(path), "--out",
                                 str(out), "--history", str(data), "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(out, keep_default_na=False)
    assert HistoryStore(f"sqlite:///{data / 'history.db'}", "transactions").load().shape[0] \
        == held  # the service's history was only read
    # the service's answer to the same records sent in order (time order, ties as sent)
    again = service(data)
    continued = again.add_scorer(tx_detector, model)
    sent = file_rows.sort_values("timestamp", kind="stable")
    by_id = {r["id"]: r for r in records}
    decisions = {}
    for start in range(0, len(sent), 150):
        ids = sent["id"].iloc[start:start + 150].tolist()
        batch = continued.score([by_id[i] for i in ids], again.request_log())
        decisions.update(zip(ids, batch.decisions, strict=True))
    again.close()
    expected = [decisions[i] for i in file_rows["id"]]
    assert scored["id"].tolist() == file_rows["id"].tolist()
    np.testing.assert_allclose(scored["score"], [d.score for d in expected], rtol=0, atol=1e-9)
    assert scored["reasons"].tolist() == [reasons(d) for d in expected]
    assert scored["repeat"].tolist() == [d.repeat for d in expected]
    assert scored["repeat"].sum() == 100 and scored["flagged"].any()
    assert (scored.loc[scored["flagged"], "reasons"] != "").all()


def test_declarations_scored_offline_equal_the_service_in_other_requests(
        tmp_path, declarations, trade_detector) -> None:
    model = ModelRef("illicitflows-trade", "1", "run-1")
    tail = declarations.tail(300).reset_index(drop=True)
    got = score_file(trade_detector, model, tail.drop(columns=["fraud"]), request_rows=64)
    records = json.loads(tail.drop(columns=["fraud", "typology", "revenue"])
                         .to_json(orient="records", date_format="iso"))
    engine = TradeScorer(trade_detector, model,
                         HistoryStore(f"sqlite:///{tmp_path / 'h.db'}", "trade"),
                         Arrival(clock_skew=None, clock_skew_days=None))
    order = np.argsort(tail["date"].to_numpy(), kind="stable").tolist()
    expected = {}
    for start in range(0, len(order), 25):  # other requests than the offline run's 64
        rows = order[start:start + 25]
        batch = engine.score([records[row] for row in rows], DryRunLog())
        expected.update(zip(rows, batch.decisions, strict=True))
    np.testing.assert_allclose(got["score"], [expected[i].score for i in range(len(tail))],
                               rtol=0, atol=1e-9)
    assert got["reasons"].tolist() == [reasons(expected[i]) for i in range(len(tail))]
    assert got["flagged"].any()


def test_a_file_the_service_would_refuse_names_its_rows(tmp_path, declarations,
                                                        trade_detector) -> None:
    model = ModelRef("illicitflows-trade", "1", "run-1")
    early = declarations.head(5)  # dated in the detector's training period
    with pytest.raises(ValueError, match="field date"):
        score_file(trade_detector, model, early, HistorySource())
