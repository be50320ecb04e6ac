"""The numbers section of a model card, read from the MLflow registry (not typed by hand): a
registered version's test metrics beside the peer baseline, threshold, rows, data fingerprint
and split, and the link to its model report."""

from __future__ import annotations

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from illicitflows.reports.decision import model_report_path

HEADLINE = ("f1", "precision", "recall", "pr_auc", "roc_auc", "account_pr_auc",
            "precision_at_5", "recall_at_5", "revenue_at_5")


def card_numbers(name: str, ref: str, base: str = "/v1") -> str:
    """Markdown for version or alias ``ref`` of registered model ``name``."""
    client = MlflowClient()
    try:
        version = (client.get_model_version(name, ref) if ref.isdigit()
                   else client.get_model_version_by_alias(name, ref))
    except MlflowException as error:
        raise LookupError(f"registered model {name!r} has no version or alias {ref!r}") from error
    run = client.get_run(version.run_id)
    metrics, tags = run.data.metrics, run.data.tags
    lines = [f"## Numbers of `{name}` version {version.version} (from the registry)", "",
             f"Run `{version.run_id}`, data fingerprint `{tags.get('data_fingerprint', '?')}`, "
             f"split {tags.get('split', '?')}; full report: "
             f"[`{model_report_path(name, str(version.version), base)}`]"
             f"({model_report_path(name, str(version.version), base)}).", "",
             "| test metric | this version | peer baseline |", "| --- | --- | --- |"]
    for metric in HEADLINE:
        ours = metrics.get(f"test_{metric}")
        if ours is None:
            continue
        theirs = metrics.get(f"baseline_test_{metric}")
        lines.append(f"| {metric} | {ours:.4f} | {'-' if theirs is None else f'{theirs:.4f}'} |")
    lines += ["", f"Threshold {metrics.get('threshold', float('nan')):.4f}; rows "
              + ", ".join(f"{split} {int(metrics[f'rows_{split}']):,}"
                          for split in ("train", "valid", "test") if f"rows_{split}" in metrics)
              + "."]
    return "\n".join(lines) + "\n"
