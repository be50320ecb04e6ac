"""Trade detector vs the raw-column LightGBM on the same split: prints one JSON line.

Default: the KCS evaluation (train 2020-01..09, validation 2020 Q4, test 2021 Q1 of the shared
Korea Customs Service files). ``--simulated N`` runs on N simulated declarations with mirror
statistics instead and adds recall per typology; with ``--date-format`` the simulated
declarations are written in the DATE paper's layout (fewer columns: no seller, departure, tax
type or transport mode) and trained on without mirror statistics. Every ranking policy of the
pipeline (``precision``, ``revenue``, ``expected-revenue``) is reported with precision, recall
and revenue recovered at 1/2/5/10 % inspected, beside the baseline, with whether the served policy
holds the targets (precision at 5 % >= 0.95, revenue at 5 % and 10 % >= the baseline's).
Tracking goes to a temporary database unless ``--tracking-uri`` is given.
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
from illicitflows.trade.io import write_date_format
from illicitflows.trade.simulate import (
    TradeSimulationConfig,
    simulate_trade,
    write_trade_simulation,
)

ROOT = Path(__file__).resolve().parents[1]
KCS = ROOT.parent / "shared" / "data" / "kcs"
KCS_FILES = ("df_syn_train_eng.csv", "df_syn_valid_eng.csv")
KCS_SPLIT = ("2020-10-01", "2021-01-01")
MIN_PRECISION_AT_5 = 0.95


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in values.items()}


def summary(test: dict[str, Any], typologies: bool) -> dict[str, Any]:
    """Precision, recall and revenue at 1/2/5/10 % inspected, PR-AUC."""
    out = {key: _rounded(test[key]) for key in ("precision_at", "recall_at", "revenue_at")}
    out["pr_auc"] = round(test["pr_auc"], 4)
    if typologies:
        out["recall_at_5_by_typology"] = _rounded(test["per_typology_recall_at_5"])
        out["recall_by_typology"] = _rounded(test["per_typology_recall"])
    return out


def targets(ours: dict[str, Any], baseline: dict[str, Any]) -> dict[str, bool]:
    """The issue's targets for the served policy against the baseline of the same run."""
    return {"precision_at_5": ours["precision_at"]["5"] >= MIN_PRECISION_AT_5,
            **{f"revenue_at_{n}": ours["revenue_at"][n] >= baseline["revenue_at"][n]
               for n in ("5", "10")}}


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    pipeline = load_pipeline(args.config, TradePipeline)
    mirror = None
    if args.simulated:
        sim = simulate_trade(TradeSimulationConfig(declarations=args.simulated, seed=args.seed))
        if args.date_format:
            date = write_date_format(sim.declarations, workdir / "sim" / "date.csv")
            data, label = [date], "simulated-date-format"
        else:
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
    ours = summary(document["test"], bool(args.simulated))
    baseline = summary(document["baseline"]["test"], bool(args.simulated))
    ranking = document["ranking"]
    return {"data": label, "seed": args.seed if args.simulated else None,
            "split": document["split"], "rows": document["rows"],
            "served_policy": ranking["policy"], "exponent": ranking["exponent"],
            "ours": ours, "baseline": baseline, "targets_met": targets(ours, baseline),
            "policies": {name: summary(values["test"], False)
                         for name, values in ranking["policies"].items()},
            "features_s": round(document["timings"]["features_s"], 2),
            "ranking_s": round(document["timings"]["ranking_s"], 2),
            "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kcs", type=Path, default=KCS, help="Folder of the KCS files.")
    parser.add_argument("--config", type=Path, default=ROOT / "pipelines" / "trade.yaml")
    parser.add_argument("--simulated", type=int, default=0,
                        help="Simulate this many declarations instead of using KCS.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--date-format", action="store_true",
                        help="With --simulated: write and read the DATE layout, no mirror.")
    parser.add_argument("--tracking-uri", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(args, Path(tmp))))


if __name__ == "__main__":
    main()
