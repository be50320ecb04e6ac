"""The MLflow pyfunc flavour of a detector: ``mlflow.pyfunc.load_model`` scores raw records."""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd

from illicitflows.modeling.detector import Detector
from illicitflows.modeling.domains import DOMAINS

ARTIFACT_KEY = "detector"


class DetectorPyfunc(mlflow.pyfunc.PythonModel):
    """Validates raw records with the domain's schema, builds features, scores them."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.detector = Detector.load(context.artifacts[ARTIFACT_KEY])

    def predict(self, context: Any, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        records = DOMAINS[self.detector.domain].parse_strict(model_input)
        return self.detector.score(records).reset_index(drop=True)
