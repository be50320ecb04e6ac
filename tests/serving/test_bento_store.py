"""The BentoML model store is the machine's, MLflow versions are a registry's: a detector is
imported under its version and run id, so another registry's same version is never served."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap


def test_same_version_of_another_run_is_imported_not_reused(tmp_path, tx_detector) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    tx_detector.save(first)
    dataclasses.replace(tx_detector, threshold=0.123).save(second)
    script = textwrap.dedent(f"""
        from illicitflows.modeling.detector import Detector
        from illicitflows.serving.engine import ModelRef
        from illicitflows.serving.runtime import import_to_bento_store
        name = "illicitflows-transactions"
        for path, run_id in [({str(first)!r}, "0a1b2c"), ({str(second)!r}, "9f8e7d"),
                             ({str(first)!r}, "0a1b2c")]:
            print(import_to_bento_store(Detector.load(path), ModelRef(name, "1", run_id))
                  .threshold)
    """)
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml")}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    thresholds = [float(line) for line in done.stdout.split()]
    assert thresholds == [tx_detector.threshold, 0.123, tx_detector.threshold]
    assert sorted(p.name for p in (tmp_path / "bentoml" / "models" /
                                   "illicitflows-transactions").iterdir()
                  if p.name != "latest") == ["mlflow-v1-0a1b2c", "mlflow-v1-9f8e7d"]
