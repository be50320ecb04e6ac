"""A model card's numbers, read from the MLflow registry (never typed by hand): a registered
version's test metrics beside the peer baseline, threshold, rows, data fingerprint and split,
and the link to its model report.

The cards in ``models/`` hold them in a generated block between :data:`BEGIN` and :data:`END`;
:func:`update_card` rewrites that block from the registry and leaves every other byte of the
card (intended use, data, limits: written by people) as it is.
"""

from __future__ import annotations

from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from illicitflows.reports.decision import model_report_path

HEADLINE = ("f1", "precision", "recall", "pr_auc", "roc_auc", "account_pr_auc",
            "precision_at_5", "recall_at_5", "revenue_at_5")
BEGIN = "<!-- registry:begin -->"
END = "<!-- registry:end -->"


class CardMarkersError(ValueError):
    """A card without one generated block (both markers, in order)."""


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
    alias = "" if ref.isdigit() else f" (alias `{ref}`)"
    lines = [f"**`{name}` version {version.version}**{alias}, from the registry.", "",
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


def generated_block(detector: str, ref: str, numbers: str) -> str:
    """The card's block: a line saying it is generated and by which command, then
    ``numbers`` (:func:`card_numbers`)."""
    command = (f"illicitflows report model-card {detector} --version {ref} "
               f"--update models/{detector}.md")
    return (f"<!-- Generated from the MLflow registry by `{command}` (`make serve` runs it "
            "after registering the models); not typed by hand: the next update rewrites "
            f"everything between these markers. -->\n{numbers}")


def update_card(path: Path, block: str) -> bool:
    """Put ``block`` between the card's markers, every other byte unchanged; True when the
    card changed. :class:`CardMarkersError` names what is missing."""
    text = path.read_bytes().decode("utf-8")
    found = (text.count(BEGIN), text.count(END))
    if found != (1, 1) or text.index(BEGIN) > text.index(END):
        order = ", the end before the beginning" if found == (1, 1) else ""
        raise CardMarkersError(
            f"{path}: a model card needs one generated block, a line {BEGIN} before a line "
            f"{END} (found {found[0]} and {found[1]}{order}); add them where the registry's "
            "numbers belong")
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    updated = text[:start] + "\n" + block + text[end:]
    if updated == text:
        return False
    path.write_bytes(updated.encode("utf-8"))
    return True
