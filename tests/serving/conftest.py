"""A small trained transactions detector and a temporary history store for serving tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from illicitflows.jobs.config import ModelConfig, ThresholdConfig
from illicitflows.jobs.training import fit_scoring_model
from illicitflows.modeling.detector import Detector
from illicitflows.modeling.split import split_by_fractions
from illicitflows.serving.engine import ModelRef
from illicitflows.trade.features import TradeFeatureBuilder
from illicitflows.trade.simulate import TradeSimulationConfig, simulate_trade
from illicitflows.transactions.features import TransactionFeatureBuilder
from illicitflows.transactions.simulate import SimulationConfig, simulate_transactions


@pytest.fixture(scope="session")
def transactions() -> pd.DataFrame:
    sim = simulate_transactions(SimulationConfig(accounts=3000, days=10, laundering_rate=0.01,
                                                 seed=7))
    return sim.frame.drop(columns=["typology", "attempt_id"]).reset_index(drop=True)


def small_detector(domain: str, builder, frame: pd.DataFrame, time_column: str,
                   label: str) -> Detector:
    """A quickly trained detector of ``domain`` (60 shallow trees) for serving tests."""
    splits = split_by_fractions(frame[time_column])
    builder.fit(frame[splits == "train"])
    features = builder.transform(frame)
    model = ModelConfig(num_boost_round=60, early_stopping_rounds=20,
                        params={"num_leaves": 15, "max_depth": 6, "learning_rate": 0.1})
    fitted = fit_scoring_model(features, frame[label].to_numpy(), splits, model,
                               ThresholdConfig(), builder.categorical_features, seed=0)
    return Detector(domain, builder, fitted.model, fitted.threshold)


@pytest.fixture(scope="session")
def tx_detector(transactions: pd.DataFrame) -> Detector:
    return small_detector("transactions", TransactionFeatureBuilder(), transactions,
                          "timestamp", "is_laundering")


@pytest.fixture(scope="session")
def declarations() -> pd.DataFrame:
    sim = simulate_trade(TradeSimulationConfig(declarations=6000, seed=5))
    return sim.declarations.reset_index(drop=True)


@pytest.fixture(scope="session")
def trade_detector(declarations: pd.DataFrame) -> Detector:
    return small_detector("trade", TradeFeatureBuilder(), declarations, "date", "fraud")


def register_champion(detector: Detector, uri: str) -> ModelRef:
    """Log ``detector`` to the MLflow registry at ``uri`` and make it the champion."""
    import mlflow

    from illicitflows.tracking.registry import CHAMPION, log_and_register, model_name
    from illicitflows.tracking.setup import configure, use_experiment

    configure(uri)
    use_experiment(detector.domain, uri)
    with mlflow.start_run():
        version = log_and_register(detector)
    mlflow.MlflowClient().set_registered_model_alias(model_name(detector.domain), CHAMPION,
                                                     version.version)
    return ModelRef(version.name, str(version.version), version.run_id)


@pytest.fixture(scope="session")
def champion():
    """:func:`register_champion`."""
    return register_champion


@pytest.fixture
def tx_model() -> ModelRef:
    return ModelRef("illicitflows-transactions", "1", "run-1")


@pytest.fixture(scope="session")
def api_records():
    """Turns canonical frame rows into API JSON records."""
    return to_api_records


def to_api_records(frame: pd.DataFrame) -> list[dict]:
    """Canonical frame rows as API JSON records (snake_case, ISO timestamps, no label)."""
    out = frame.drop(columns=["is_laundering"]).copy()
    out["timestamp"] = out["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    return [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
            for row in out.to_dict(orient="records")]


class MemoryLog:
    """A request log kept in memory: the audit log's lifecycle (begin, texts, attach, commit
    or abandon) without a database, noting what it is told; ``fail`` ("attaching" or
    "committing") makes it refuse the decisions at that step."""

    def __init__(self, fail: str | None = None) -> None:
        self.fail = fail
        self.events: list[str] = []
        self.batches: list = []
        self.ids: list[str] = []

    def begin(self, decision_ids, records) -> None:
        from illicitflows.audit.canonical import frame_texts

        self.events.append(f"begin {len(decision_ids)}")
        self.ids, self.written, self.pending = list(decision_ids), frame_texts(records), []

    def texts(self) -> list[str]:
        self.events.append("texts")
        return self.written

    def attach(self, batches) -> None:
        self.events.append(f"attach {sum(len(b.decision_ids) for b in batches)}")
        assert [i for b in batches for i in b.decision_ids] == self.ids
        assert [t for b in batches for t in b.record_texts] == self.written
        if self.fail == "attaching":
            raise OSError("disk full")
        self.pending = list(batches)

    def commit(self) -> None:
        self.events.append("commit")
        if self.fail == "committing":
            raise OSError("disk full")
        self.batches += self.pending

    def abandon(self) -> None:
        self.events.append("abandon")

    def recall(self, decision_ids):
        raise LookupError("a memory log does not read decisions back")

    @property
    def decision_ids(self) -> list[str]:
        return [i for b in self.batches for i in b.decision_ids]


@pytest.fixture
def memory_log():
    """:class:`MemoryLog`, to make one per request."""
    return MemoryLog
