"""What every training run records in MLflow besides params and metrics: data fingerprint,
code version, the feature catalogue, a PR curve and a TreeSHAP summary plot."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import shap  # noqa: E402
from sklearn.metrics import precision_recall_curve  # noqa: E402

import illicitflows  # noqa: E402


def fingerprint(paths: Iterable[Path | None]) -> str:
    """sha256 over the bytes of the input files (in the given order)."""
    digest = hashlib.sha256()
    for path in paths:
        if path is None:
            continue
        with Path(path).open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def code_version() -> str:
    """The git commit of the source tree when available, else the package version."""
    source = Path(illicitflows.__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True,
                                text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=source,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return f"{commit}{'+dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return f"illicitflows-{illicitflows.__version__}"


def flat_metrics(prefix: str, metrics: dict[str, Any]) -> dict[str, float]:
    """Flatten nested metrics: ``{"test": {"f1": x}}`` -> ``{"test_f1": x}``."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}_{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(flat_metrics(name, value))
        elif isinstance(value, int | float) and np.isfinite(value):
            flat[name.replace("%", "pct")] = float(value)
    return flat


def log_pr_curve(y: np.ndarray, score: np.ndarray, threshold: float, title: str) -> None:
    """Precision-recall curve of the test split with the chosen threshold marked."""
    precision, recall, thresholds = precision_recall_curve(y, score)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(recall, precision)
    at = int(np.clip(np.searchsorted(thresholds, threshold), 0, len(thresholds) - 1))
    ax.scatter([recall[at]], [precision[at]], color="red", label=f"threshold {threshold:.3f}")
    ax.set(xlabel="recall", ylabel="precision", title=title, xlim=(0, 1), ylim=(0, 1.02))
    ax.legend()
    mlflow.log_figure(fig, "plots/pr_curve.png")
    plt.close(fig)


def log_shap_summary(contributions: np.ndarray, features: pd.DataFrame) -> None:
    """TreeSHAP beeswarm summary of a sample of test records."""
    shap.summary_plot(contributions, features, show=False, max_display=20)
    fig = plt.gcf()
    fig.set_size_inches(9, 8)
    mlflow.log_figure(fig, "plots/shap_summary.png")
    plt.close(fig)
    importance = pd.DataFrame({"feature": features.columns,
                               "mean_abs_shap": np.abs(contributions).mean(axis=0)})
    mlflow.log_table(importance.sort_values("mean_abs_shap", ascending=False),
                     "tables/shap_importance.json")
