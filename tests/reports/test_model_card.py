"""Model cards take their numbers from the registry: ``report model-card --update`` rewrites
the card's generated block from a registered version's run and nothing else of the card."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from illicitflows.cli import app as cli
from illicitflows.reports.model_card import BEGIN, END, HEADLINE, generated_block

ROOT = Path(__file__).resolve().parents[2]
METRICS = {"test_f1": 0.71234, "test_precision": 0.65, "test_recall": 0.7891,
           "test_pr_auc": 0.80125, "test_roc_auc": 0.99871, "test_account_pr_auc": 0.8456,
           "baseline_test_f1": 0.6789, "baseline_test_pr_auc": 0.7312, "threshold": 0.4321,
           "rows_train": 600_000, "rows_valid": 200_000, "rows_test": 201_831}


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A registry holding ``illicitflows-transactions`` version 1 (alias champion) of a run
    with :data:`METRICS`: (tracking URI, run id)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('cards') / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    client = MlflowClient(uri, registry_uri=uri)
    run = client.create_run(client.create_experiment("cards"))
    for name, value in METRICS.items():
        client.log_metric(run.info.run_id, name, value)
    client.set_tag(run.info.run_id, "data_fingerprint", "f1ngerprint")
    client.set_tag(run.info.run_id, "split", "fractions 0.6,0.2,0.2")
    client.create_registered_model("illicitflows-transactions")
    version = client.create_model_version("illicitflows-transactions",
                                          f"{run.info.artifact_uri}/model", run.info.run_id)
    client.set_registered_model_alias("illicitflows-transactions", "champion", version.version)
    yield uri, run.info.run_id
    mlflow.set_tracking_uri(previous[0])
    mlflow.set_registry_uri(previous[1])


def update(card: Path, uri: str) -> object:
    return CliRunner().invoke(cli, ["report", "model-card", "transactions", "--version",
                                    "champion", "--update", str(card), "--tracking-uri", uri])


def parts(text: str) -> tuple[str, str, str]:
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[:start], text[start:end], text[end:]


def test_the_update_fills_the_block_from_the_registry_and_nothing_else(registry,
                                                                       tmp_path) -> None:
    uri, run_id = registry
    card = tmp_path / "transactions.md"
    original = (ROOT / "models" / "transactions.md").read_bytes()
    card.write_bytes(original)
    done = update(card, uri)
    assert done.exit_code == 0, done.output + repr(done.exception)
    before, block, after = parts(card.read_text())
    old_before, _, old_after = parts(original.decode())
    assert (before, after) == (old_before, old_after)  # every hand-written byte kept
    logged = MlflowClient(uri, registry_uri=uri).get_run(run_id).data.metrics
    assert logged == METRICS
    for metric in HEADLINE:
        if f"test_{metric}" in logged:
            theirs = logged.get(f"baseline_test_{metric}")
            assert (f"| {metric} | {logged[f'test_{metric}']:.4f} | "
                    f"{'-' if theirs is None else f'{theirs:.4f}'} |") in block
    assert "| precision_at_5 |" not in block  # not logged, not shown
    assert f"Threshold {logged['threshold']:.4f}" in block
    assert "train 600,000, valid 200,000, test 201,831" in block
    assert run_id in block and "f1ngerprint" in block and "version 1" in block
    assert "/v1/models/illicitflows-transactions/1/report" in block
    assert block.lstrip("\n").startswith(
        generated_block("transactions", "champion", "").strip())  # says how it was made

    written = card.read_bytes()
    again = update(card, uri)
    assert again.exit_code == 0 and "already current" in again.output
    assert card.read_bytes() == written  # idempotent


@pytest.mark.parametrize("text", [
    "# Model card\n\nNo block here.\n",
    f"# Model card\n\n{END}\nnumbers\n{BEGIN}\n",
    f"# Model card\n\n{BEGIN}\n{BEGIN}\n{END}\n",
])
def test_a_card_without_one_generated_block_is_refused_clearly(registry, tmp_path,
                                                               text) -> None:
    card = tmp_path / "card.md"
    card.write_text(text)
    done = update(card, registry[0])
    assert done.exit_code == 1
    said = " ".join(done.output.split())
    assert "needs one generated block" in said and BEGIN in said and END in said
    assert card.read_text() == text


def test_an_unregistered_model_and_a_missing_target_are_refused(registry, tmp_path) -> None:
    card = tmp_path / "trade.md"
    original = (ROOT / "models" / "trade.md").read_bytes()
    card.write_bytes(original)
    missing = CliRunner().invoke(cli, ["report", "model-card", "trade", "--update", str(card),
                                       "--tracking-uri", registry[0]])  # none registered
    assert missing.exit_code == 1 and "illicitflows-trade" in missing.output
    assert card.read_bytes() == original
    neither = CliRunner().invoke(cli, ["report", "model-card", "transactions",
                                       "--tracking-uri", registry[0]])
    assert neither.exit_code == 2 and "--update" in neither.output


@pytest.mark.parametrize("detector", ["transactions", "trade"])
def test_the_committed_cards_hold_a_generated_block_that_names_its_command(detector) -> None:
    text = (ROOT / "models" / f"{detector}.md").read_text()
    _, block, _ = parts(text)
    notice = generated_block(detector, "champion", "").strip()
    assert block.lstrip("\n").startswith(notice)
    assert f"--update models/{detector}.md" in notice
