"""The trade training pipeline: simulated data end to end into MLflow, the registered model
scoring a raw CSV in a fresh process, label-free mode, and the KCS evaluation set-up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from illicitflows.jobs.config import (
    ModelConfig,
    RevenueModelConfig,
    SplitConfig,
    ThresholdConfig,
    TradePipeline,
    load_pipeline,
)
from illicitflows.jobs.train_trade import RAW_BASELINE, TrainTradeRequest, train_trade
from illicitflows.trade.simulate import (
    TradeSimulationConfig,
    simulate_trade,
    write_trade_simulation,
)

ROOT = Path(__file__).resolve().parents[2]
KCS = ROOT.parent / "shared" / "data" / "kcs"
KCS_FILES = [KCS / "df_syn_train_eng.csv", KCS / "df_syn_valid_eng.csv"]
FAST = ModelConfig(num_boost_round=60, early_stopping_rounds=20,
                   params={"num_threads": 1, "learning_rate": 0.1, "num_leaves": 15})
SIM = TradeSimulationConfig(declarations=5_000, days=120, importers=400, declarants=40,
                            sellers=500, products=120, shell_importers=10, fraud_rate=0.1,
                            seed=5)


FAST_HEAD = RevenueModelConfig(num_boost_round=60, early_stopping_rounds=20,
                               params={"learning_rate": 0.1})
POLICIES = {"precision", "revenue", "expected-revenue"}


def fast_pipeline(**changes: object) -> TradePipeline:
    settings = {"model": FAST, "baseline_model": FAST, "revenue_model": FAST_HEAD,
                "shap_sample": 50, "promotion_metric": "precision_at_5", **changes}
    return TradePipeline(**settings)


@pytest.fixture(scope="module")
def sim_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_trade_simulation(simulate_trade(SIM), tmp_path_factory.mktemp("sim"))


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One tracking database for the module (creating one takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


def fresh_process_scores(uri: str, csv: Path, out: Path) -> pd.DataFrame:
    """Load ``models:/illicitflows-trade@challenger`` with pyfunc in a new interpreter."""
    code = (
        "import sys, mlflow, pandas as pd\n"
        "mlflow.set_tracking_uri(sys.argv[1]); mlflow.set_registry_uri(sys.argv[1])\n"
        "model = mlflow.pyfunc.load_model('models:/illicitflows-trade@challenger')\n"
        "model.predict(pd.read_csv(sys.argv[2])).to_csv(sys.argv[3], index=False)\n"
    )
    subprocess.run([sys.executable, "-c", code, uri, str(csv), str(out)], check=True,
                   capture_output=True, text=True, timeout=240)
    return pd.read_csv(out)


def check_ranking_policies(document: dict) -> None:
    """Every policy is reported at every rate; the served one is the document's test ranking,
    and its budget threshold flags about the budget."""
    ranking = document["ranking"]
    assert ranking["configured"] == "expected-revenue"
    assert set(ranking["policies"]) >= POLICIES
    for metrics in ranking["policies"].values():
        for metric in ("precision_at", "recall_at", "revenue_at"):
            assert set(metrics["test"][metric]) == {"1", "2", "5", "10"}
    guard = ranking["guard"]
    assert guard["min_precision"] == 0.95 and len(guard["candidates"]) > 1
    served = ranking["policies"]["expected-revenue" if ranking["policy"] != "precision"
                                 else "precision"]["test"]
    assert document["test"]["revenue_at"] == pytest.approx(served["revenue_at"])
    assert document["test"]["precision_at"] == pytest.approx(served["precision_at"])
    # revenue alone recovers at least as much revenue at 1 % as the probability alone
    policies = ranking["policies"]
    assert policies["revenue"]["test"]["revenue_at"]["1"] >= \
        policies["precision"]["test"]["revenue_at"]["1"]
    # a budget threshold on the inspection priority flags about 5 % of the test records
    assert 0.03 <= document["test"]["flagged_share"] <= 0.08


@pytest.mark.e2e
def test_simulated_data_end_to_end_and_fresh_process_scoring(
        sim_files: dict[str, Path], tracking_uri: str, tmp_path: Path) -> None:
    uri = tracking_uri
    budget = ThresholdConfig(policy="budget", budget=0.05)
    request = TrainTradeRequest(data=sim_files["declarations"],
                                pipeline=fast_pipeline(threshold=budget),
                                mirror=sim_files["mirror_exports"], baseline=RAW_BASELINE,
                                tracking_uri=uri)
    steps: list[str] = []
    document = train_trade(request, progress=steps.append)
    assert len(steps) == 7
    test = document["test"]
    for metric in ("precision_at", "recall_at", "revenue_at"):
        assert set(test[metric]) == {"1", "2", "5", "10"}
    assert {"pr_auc", "roc_auc", "f1", "precision", "recall"} <= set(test)
    assert set(test["per_typology_recall"]) == {
        "UNDER-INVOICING", "OVER-INVOICING", "HS-MISCLASSIFICATION", "FALSE-ORIGIN",
        "QUANTITY-MISDECLARATION", "PHANTOM-SHIPMENT"}
    assert test["revenue_at"]["10"] > 0.3
    assert document["baseline"]["name"] == RAW_BASELINE
    assert set(document["baseline"]["test"]["precision_at"]) == {"1", "2", "5", "10"}
    assert document["rows"]["test"] > 0 and document["detector"] == "trade"
    assert document["model"]["name"] == "illicitflows-trade"
    json.dumps(document, default=str)
    check_ranking_policies(document)

    scored = fresh_process_scores(uri, sim_files["declarations"], tmp_path / "scores.csv")
    assert list(scored.columns) == ["score", "flagged"] and len(scored) == SIM.declarations
    import mlflow

    from illicitflows.tracking.registry import load_detector
    from illicitflows.trade.io import load_declarations

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    detector, version = load_detector("trade", "challenger")
    assert str(version.version) == document["model"]["version"]
    frame, _ = load_declarations(sim_files["declarations"])
    np.testing.assert_allclose(scored["score"], detector.score(frame)["score"], rtol=1e-9)
    run = mlflow.get_run(document["model"]["run_id"])
    assert "test_precision_at_5" in run.data.metrics
    assert "baseline_test_precision_at_5" in run.data.metrics
    for policy in POLICIES:
        for metric in ("precision_at", "recall_at", "revenue_at"):
            for rate in ("1", "2", "5", "10"):
                assert f"policy_{policy}_test_{metric}_{rate}" in run.data.metrics
    table = mlflow.load_table("tables/ranking_policies.json", run_ids=[run.info.run_id])
    assert POLICIES | {"baseline (raw LightGBM)"} <= set(table["policy"])


def test_label_free_mode_ranks_by_precision_and_refuses_other_rankings() -> None:
    assert fast_pipeline(model=ModelConfig(kind="isolation-forest")).ranking == "precision"
    with pytest.raises(ValueError, match="needs labels"):
        fast_pipeline(model=ModelConfig(kind="isolation-forest"), ranking="revenue")


def test_label_free_isolation_forest(sim_files: dict[str, Path], tracking_uri: str) -> None:
    model = ModelConfig(kind="isolation-forest", params={"n_estimators": 50})
    pipeline = fast_pipeline(model=model, split=SplitConfig(fractions=(0.5, 0.25, 0.25)))
    document = train_trade(TrainTradeRequest(data=sim_files["declarations"], pipeline=pipeline,
                                             tracking_uri=tracking_uri))
    assert document["best_iterations"] is None
    assert 0.0 <= document["test"]["precision_at"]["5"] <= 1.0
    assert "baseline" not in document


def test_unknown_baseline_and_repeated_files_fail(sim_files: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="unknown trade baseline"):
        train_trade(TrainTradeRequest(data=sim_files["declarations"], pipeline=fast_pipeline(),
                                      baseline="gfp"))
    twice = [sim_files["declarations"], sim_files["declarations"]]
    with pytest.raises(ValueError, match="more than one data file"):
        train_trade(TrainTradeRequest(data=twice, pipeline=fast_pipeline()))


def test_pipeline_yaml_is_valid() -> None:
    pipeline = load_pipeline(ROOT / "pipelines" / "trade.yaml", TradePipeline)
    assert isinstance(pipeline, TradePipeline)
    assert pipeline.promotion_metric == "precision_at_5"
    assert pipeline.baseline_model.num_boost_round == 1000
    assert pipeline.baseline_model.params["num_leaves"] == 63
    assert pipeline.ranking == "expected-revenue"
    assert pipeline.ranking_guard is not None and pipeline.ranking_guard.min_precision == 0.95
    assert pipeline.threshold.policy == "budget" and pipeline.threshold.budget == 0.05


@pytest.mark.skipif(not all(p.exists() for p in KCS_FILES),
                    reason=f"KCS data not found in {KCS} (shared data folder absent)")
def test_kcs_files_train_on_2020_and_test_on_2021_q1(tracking_uri: str) -> None:
    split = SplitConfig(dates=("2020-10-01", "2021-01-01"))
    request = TrainTradeRequest(data=KCS_FILES, pipeline=fast_pipeline(split=split),
                                fmt="kcs", tracking_uri=tracking_uri)
    document = train_trade(request)
    assert document["rows"] == {"train": 28_751, "valid": 8_634, "test": 8_134}
    assert document["test"]["precision_at"]["5"] > 0.95
    assert document["test"]["per_typology_recall"] == {}
    # the served ranking recovers more revenue than ranking by probability alone
    policies = document["ranking"]["policies"]
    assert set(policies) >= POLICIES
    for rate in ("5", "10"):
        assert document["test"]["revenue_at"][rate] > \
            policies["precision"]["test"]["revenue_at"][rate]


def test_cli_quarantines_a_bad_row_and_trains_on(sim_files: dict[str, Path], tracking_uri: str,
                                                 tmp_path: Path, monkeypatch) -> None:
    """One unreadable value: the row goes to the default quarantine file, named in the output,
    and training goes on without it."""
    import yaml
    from typer.testing import CliRunner

    from illicitflows.cli import app

    monkeypatch.setenv("ILLICITFLOWS_DATA_DIR", str(tmp_path / "data"))
    frame = pd.read_csv(sim_files["declarations"], dtype=str).iloc[:2500]  # the first days
    frame.loc[7, "declared_value"] = "twelve"
    data = tmp_path / "declarations.csv"
    frame.to_csv(data, index=False)
    config = tmp_path / "trade.yaml"
    config.write_text(yaml.safe_dump(fast_pipeline().model_dump(mode="json")))
    metrics = tmp_path / "metrics.json"
    result = CliRunner().invoke(app, ["train", "trade", "--data", str(data), "--config",
                                      str(config), "--tracking-uri", tracking_uri,
                                      "--metrics-out", str(metrics)])
    assert result.exit_code == 0, result.output
    quarantine = tmp_path / "data" / "quarantine" / "declarations.quarantine.csv"
    assert "1 bad row(s) quarantined in" in result.output
    assert quarantine.name in result.output.replace("\n", "")
    bad = pd.read_csv(quarantine)
    assert bad["_row"].tolist() == [7]
    assert "declared_value" in bad["_issues"].iloc[0]
    document = json.loads(metrics.read_text())
    assert document["quarantined"] == 1
    assert sum(document["rows"].values()) == len(frame) - 1
