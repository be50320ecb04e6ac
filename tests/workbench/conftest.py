"""A service with both detectors loaded, keys of every role and a few hundred scored records,
for the workbench tests (dispositions, reports, review page, goAML)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from illicitflows.serving.app import app
from illicitflows.serving.engine import ModelRef
from illicitflows.serving.runtime import Runtime, Settings
from illicitflows.trade.features import TradeFeatureBuilder
from illicitflows.trade.simulate import TradeSimulationConfig, simulate_trade
from illicitflows.transactions.features import TransactionFeatureBuilder
from illicitflows.transactions.simulate import SimulationConfig, simulate_transactions

_SERVING = importlib.util.spec_from_file_location(
    "serving_fixtures", Path(__file__).resolve().parents[1] / "serving" / "conftest.py")
serving_fixtures = importlib.util.module_from_spec(_SERVING)
_SERVING.loader.exec_module(serving_fixtures)

ROLES = ("scorer", "analyst", "auditor", "admin")


@dataclass
class Workbench:
    """A scored service: its client, runtime, a secret per role and the scoring answers."""

    client: TestClient
    runtime: Runtime
    keys: dict[str, str]
    transactions: dict
    trade: dict
    frame: pd.DataFrame

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def flagged(self, detector: str = "transactions") -> list[dict]:
        answer = self.transactions if detector == "transactions" else self.trade
        return [r for r in answer["results"] if r["flagged"]]


@pytest.fixture(scope="session")
def wb_transactions() -> pd.DataFrame:
    sim = simulate_transactions(SimulationConfig(accounts=2000, days=8, laundering_rate=0.02,
                                                 seed=11))
    return sim.frame.drop(columns=["typology", "attempt_id"]).reset_index(drop=True)


@pytest.fixture(scope="session")
def wb_declarations() -> pd.DataFrame:
    return simulate_trade(TradeSimulationConfig(declarations=3000, seed=3)
                          ).declarations.reset_index(drop=True)


@pytest.fixture(scope="session")
def wb_detectors(wb_transactions, wb_declarations):
    small = serving_fixtures.small_detector
    return (small("transactions", TransactionFeatureBuilder(), wb_transactions, "timestamp",
                  "is_laundering"),
            small("trade", TradeFeatureBuilder(), wb_declarations, "date", "fraud"))


def trade_records(frame: pd.DataFrame) -> list[dict]:
    """Declarations as API records (ISO dates, no labels or simulator columns)."""
    out = frame.drop(columns=[c for c in ("fraud", "typology", "revenue_at_stake")
                              if c in frame.columns]).copy()
    out["date"] = out["date"].dt.strftime("%Y-%m-%d")
    return [{k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
            for row in out.to_dict(orient="records")]


def start_workbench(tmp_path: Path, detectors, transactions: pd.DataFrame,
                    declarations: pd.DataFrame, rows: int = 600) -> Workbench:
    settings = Settings(history_url=f"sqlite:///{tmp_path / 'history.db'}",
                        audit_url=f"sqlite:///{tmp_path / 'audit.db'}",
                        keys_url=f"sqlite:///{tmp_path / 'keys.db'}", audit_writer="inline")
    runtime = Runtime(settings)
    app.state.runtime = runtime
    tx, trade = detectors
    runtime.add_scorer(tx, ModelRef("illicitflows-transactions", "1", "run-tx"))
    runtime.add_scorer(trade, ModelRef("illicitflows-trade", "1", "run-trade"))
    keys = {role: runtime.keys.create(role)[1] for role in ROLES}
    client = TestClient(app)
    scorer = {"Authorization": f"Bearer {keys['scorer']}"}
    start = len(transactions) - rows  # the test period: after the detector's training rows
    scored = client.post("/transactions/score", headers=scorer, json={
        "transactions": serving_fixtures.to_api_records(transactions.iloc[start:])})
    assert scored.status_code == 200, scored.text
    traded = client.post("/trade/score", headers=scorer, json={
        "declarations": trade_records(declarations.iloc[-300:])})
    assert traded.status_code == 200, traded.text
    return Workbench(client, runtime, keys, scored.json(), traded.json(),
                     transactions.iloc[start:])


@pytest.fixture
def workbench(tmp_path, wb_detectors, wb_transactions, wb_declarations):
    bench = start_workbench(tmp_path, wb_detectors, wb_transactions, wb_declarations)
    yield bench
    bench.runtime.close()
