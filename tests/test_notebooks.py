"""Every notebook in notebooks/ runs top to bottom on small data, and what it found (its
results.json) is what it is meant to show."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def quickstart(results: dict, _: Path) -> None:
    assert results["metrics"]["pr_auc"] > 0.2
    assert results["reasons"] and all(r["contribution"] > 0 for r in results["reasons"])


def data_scientist(results: dict, work: Path) -> None:
    assert results["promoted"] and results["champion"] == results["challenger"]
    auc = results["test_pr_auc"]
    assert auc["challenger"] > auc["champion"]
    assert set(results["pr_area"]) == {"champion", "challenger"}
    assert results["shap_top_feature"]
    assert (work / "pr_curves.png").stat().st_size > 0
    assert (work / "shap_summary.png").stat().st_size > 0


def trade_kcs(results: dict, _: Path) -> None:
    if "skipped" in results:
        pytest.skip(f"trade notebook: {results['skipped']} (the shared KCS data)")
    inspection = results["inspection"]
    assert inspection["precision_at"]["1"] > results["base_rate"]  # better than random
    caught = [inspection["revenue_at"][n] for n in ("1", "2", "5", "10", "20", "30")]
    assert caught == sorted(caught) and caught[-1] > 0.3


def auditor(results: dict, work: Path) -> None:
    assert results["report_status"] == 200 and results["report_has_waterfall"]
    assert results["replay_ok"] and results["chain_ok"] and results["checked"] >= 800
    assert results["decision_id"] in (work / "report.html").read_text()


CHECKS: dict[str, Callable[[dict, Path], None]] = {
    "quickstart": quickstart, "data_scientist": data_scientist, "trade_kcs": trade_kcs,
    "auditor": auditor}


def test_every_notebook_is_checked() -> None:
    assert {path.stem for path in NOTEBOOKS} == set(CHECKS)


@pytest.mark.e2e
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_shows_what_it_claims(path: Path, tmp_path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    assert not [cell for cell in notebook.cells if cell.cell_type == "code" and cell.outputs], \
        f"{path.name}: outputs must be stripped in git"
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    CHECKS[path.stem](json.loads((tmp_path / "results.json").read_text()), tmp_path)
