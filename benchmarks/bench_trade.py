"""Trade detector vs the raw-column LightGBM on the same split: prints one JSON line.

Default: the KCS evaluation (train 2020-01..09, validation 2020 Q4, test 2021 Q1 of the shared
Korea Customs Service files). ``--simulated N`` runs on N simulated declarations with mirror
statistics instead and adds recall per typology. Tracking goes to a temporary database unless
``--tracking-uri`` is given.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from illicitflows.jobs.config import TradePipeline, load_pipeline
from illicitflows.jobs.train_trade import RAW_BASELINE, TrainTradeRequest, train_trade
from illicitflows.trade.simulate import (
    TradeSimulationConfig,
    simulate_trade,
    write_trade_simulation,
)

ROOT = Path(__file__).resolve().parents[1]
KCS = ROOT.parent / "shared" / "data" / "kcs"
KCS_FILES = ("df_syn_train_eng.csv", "df_syn_valid_eng.csv")
KCS_SPLIT = ("2020-10-01", "2021-01-01")


def summary(test: dict[str, Any], typologies: bool) -> dict[str, Any]:
    """The numbers compared: precision at 1/2/5/10 % inspected, revenue at 5 %, PR-AUC."""
    out = {"precision_at": {k: round(v, 4) for k, v in test["precision_at"].items()},
           "revenue_at_5": round(test["revenue_at"]["5"], 4), "pr_auc": round(test["pr_auc"], 4)}
    if typologies:
        out["recall_at_5_by_typology"] = {k: round(v, 4) for k, v in
                                          test["per_typology_recall_at_5"].items()}
        out["recall_by_typology"] = {k: round(v, 4) for k, v in
                                     test["per_typology_recall"].items()}
    return out


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    pipeline = load_pipeline(args.config, TradePipeline)
    mirror = None
    if args.simulated:
        sim = simulate_trade(TradeSimulationConfig(declarations=args.simulated, seed=args.seed))
        files = write_trade_simulation(sim, workdir / "sim")
        data, mirror, label = [files["declarations"]], files["mirror_exports"], "simulated"
    else:
        data, label = [args.kcs / name for name in KCS_FILES], "kcs"
        split = pipeline.split.model_copy(update={"dates": KCS_SPLIT})
        pipeline = pipeline.model_copy(update={"split": split})
    uri = args.tracking_uri or f"sqlite:///{workdir / 'mlflow.db'}"
    started = time.perf_counter()
    document = train_trade(TrainTradeRequest(data=data, pipeline=pipeline, mirror=mirror,
                                             baseline=RAW_BASELINE, tracking_uri=uri))
    return {"data": label, "split": document["split"], "rows": document["rows"],
            "ours": summary(document["test"], bool(args.simulated)),
            "baseline": summary(document["baseline"]["test"], bool(args.simulated)),
            "features_s": round(document["timings"]["features_s"], 2),
            "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kcs", type=Path, default=KCS, help="Folder of the KCS files.")
    parser.add_argument("--config", type=Path, default=ROOT / "pipelines" / "trade.yaml")
    parser.add_argument("--simulated", type=int, default=0,
                        help="Simulate this many declarations instead of using KCS.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tracking-uri", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(args, Path(tmp))))


if __name__ == "__main__":
    main()
