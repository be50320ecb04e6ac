"""A registered model version's HTML report, written at training time and logged to its MLflow
run: metrics beside the peer baseline, PR curve, per-typology recall or inspection-rate
results, SHAP summary, feature catalogue, data fingerprint and threshold policy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import mlflow
import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sklearn.metrics import precision_recall_curve

from illicitflows.reports.render import CSS, environment
from illicitflows.reports.svg import bars_svg, pr_curve_svg

#: Where the report is logged in the run's artifacts.
ARTIFACT_PATH = "report/model_report.html"
HEADLINE = ("f1", "precision", "recall", "pr_auc", "roc_auc", "account_pr_auc")


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def metric_rows(test: Mapping[str, Any],
                baseline: Mapping[str, Any] | None) -> list[tuple[str, str, str]]:
    """(metric, ours, the baseline's) for every scalar test metric."""
    theirs = (baseline or {}).get("test", {})
    return [(name, _number(value), _number(theirs[name]) if name in theirs else "-")
            for name, value in test.items() if isinstance(value, int | float)]


def nested_rows(test: Mapping[str, Any],
                baseline: Mapping[str, Any] | None) -> dict[str, list[tuple[str, str, str]]]:
    """Each nested metric table (per typology, at budgets, at inspection rates ...)."""
    theirs = (baseline or {}).get("test", {})
    tables = {}
    for name, value in test.items():
        if isinstance(value, Mapping) and value:
            other = theirs.get(name, {}) if isinstance(theirs.get(name), Mapping) else {}
            tables[name] = [(str(key), _flat(inner), _flat(other.get(key, "-")))
                            for key, inner in value.items()]
    return tables


def _flat(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_number(v)}" for k, v in value.items())
    return _number(value)


def pr_curve(y: np.ndarray, scores: np.ndarray, threshold: float
             ) -> tuple[str, tuple[float, float] | None]:
    """The test PR curve as SVG, and the (recall, precision) at the threshold."""
    if y is None or len(np.unique(y)) < 2:
        return "", None
    precision, recall, thresholds = precision_recall_curve(y, scores)
    at = int(np.clip(np.searchsorted(thresholds, threshold), 0, len(thresholds) - 1))
    mark = (float(recall[at]), float(precision[at]))
    return pr_curve_svg({"this model": (recall.tolist(), precision.tolist())},
                        {"this model": mark}), mark


def render_model_report(*, name: str, version: str, run_id: str, detector: str,
                        document: Mapping[str, Any], catalogue: Sequence[Mapping[str, str]],
                        fingerprint: str, threshold_policy: Mapping[str, Any],
                        y: np.ndarray | None, scores: np.ndarray, test: np.ndarray,
                        mean_abs_shap: Mapping[str, float]) -> str:
    """The report's HTML (one file, inline styles and SVG)."""
    baseline = document.get("baseline")
    curve, mark = pr_curve(None if y is None else y[test], scores[test], document["threshold"])
    top = sorted(mean_abs_shap.items(), key=lambda item: -item[1])[:20]
    return environment().get_template("model.html.j2").render(
        css=CSS, name=name, version=version, run_id=run_id, detector=detector,
        threshold=document["threshold"], rows=document.get("rows", {}),
        metrics=metric_rows(document.get("test", {}), baseline),
        tables=nested_rows(document.get("test", {}), baseline),
        baseline_name=(baseline or {}).get("name"), curve=curve, mark=mark,
        shap=bars_svg(top, "mean |SHAP| on a test sample") if top else "",
        catalogue=catalogue, fingerprint=fingerprint, policy=threshold_policy,
        analyst_labels=document.get("analyst_labels"),
        generated=datetime.now(UTC).isoformat(timespec="seconds"))


def load_model_report(name: str, version: str) -> str:
    """A registered version's report from its run's artifacts (the current tracking URI);
    LookupError when the version or its report is missing."""
    try:
        run_id = MlflowClient().get_model_version(name, version).run_id
    except MlflowException as error:
        raise LookupError(f"no registered model {name!r} version {version!r}") from error
    try:
        return mlflow.artifacts.load_text(f"runs:/{run_id}/{ARTIFACT_PATH}")
    except (MlflowException, OSError) as error:
        raise LookupError(f"{name} version {version} (run {run_id}) has no model report: it "
                          "was trained before reports were written") from error
