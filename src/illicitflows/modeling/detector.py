"""The detector artifact: fitted feature builder + model + threshold, saved as one folder.

Everything needed to score raw records travels together, so a registered model scores a raw
file in a fresh process and the service computes exactly what training computed.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from illicitflows.modeling.isolation import IsolationModel
from illicitflows.modeling.lgbm import LightGBMModel
from illicitflows.modeling.ranking import Ranking
from illicitflows.progress import StepCallback, no_progress
from illicitflows.validation import LateRecordError

MANIFEST = "detector.json"
BUILDER = "builder.pkl"
LIGHTGBM_FILE = "model.txt"
ISOLATION_FILE = "model.pkl"
RANKING_FILE = "ranking.json"
REVENUE_FILE = "revenue_model.txt"


class FeatureBuilder(Protocol):
    """What a domain's feature builder offers (transactions and trade implement it)."""

    version: str

    @property
    def feature_names(self) -> list[str]: ...

    @property
    def categorical_features(self) -> list[str]: ...

    @property
    def specs(self) -> list[Any]: ...

    def new_state(self) -> Any: ...

    def scoring_state(self) -> Any: ...

    def transform(self, frame: pd.DataFrame, state: Any = None,
                  progress: StepCallback = no_progress) -> pd.DataFrame: ...


ScoringModel = LightGBMModel | IsolationModel


@dataclass
class Detector:
    """A trained detector of one domain (``transactions`` or ``trade``)."""

    domain: str
    builder: FeatureBuilder
    model: ScoringModel
    threshold: float
    info: dict[str, Any] = field(default_factory=dict)
    ranking: Ranking | None = None  # none: the score is the model's probability

    def features(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Features of a file scored on its own: it continues from where training left off
        (``scoring_state``) when it comes after the training data; a file reaching back into
        the training period (a back-test) is scored as its own history instead."""
        try:
            return self.builder.transform(frame, self.builder.scoring_state())
        except LateRecordError:
            return self.builder.transform(frame, self.builder.new_state())

    def score_features(self, features: pd.DataFrame) -> np.ndarray:
        """The score compared with the threshold: the model's probability, or the inspection
        priority of the ranking policy (:mod:`illicitflows.modeling.ranking`)."""
        probability = self.model.score(features)
        return probability if self.ranking is None else self.ranking.score(probability, features)

    def score(self, frame: pd.DataFrame, state: Any = None) -> pd.DataFrame:
        """Score validated canonical records: ``score`` and ``flagged`` per record."""
        features = self.features(frame) if state is None else self.builder.transform(frame, state)
        score = self.score_features(features)
        return pd.DataFrame({"score": score, "flagged": score >= self.threshold},
                            index=frame.index)

    def save(self, directory: Path) -> Path:
        """Write the artifact folder."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if isinstance(self.model, LightGBMModel):
            (directory / LIGHTGBM_FILE).write_text(self.model.to_text())
        else:
            (directory / ISOLATION_FILE).write_bytes(self.model.to_bytes())
        (directory / BUILDER).write_bytes(pickle.dumps(self.builder))
        if self.ranking is not None:
            (directory / RANKING_FILE).write_text(self.ranking.to_json())
            if self.ranking.revenue_model is not None:
                (directory / REVENUE_FILE).write_text(self.ranking.revenue_model.to_text())
        manifest = {"domain": self.domain, "model_kind": self.model.kind,
                    "threshold": self.threshold, "features_version": self.builder.version,
                    "feature_names": self.builder.feature_names, "info": self.info}
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
        return directory

    @classmethod
    def load(cls, directory: Path) -> Detector:
        """Read an artifact folder written by :meth:`save`."""
        directory = Path(directory)
        manifest = json.loads((directory / MANIFEST).read_text())
        builder = pickle.loads((directory / BUILDER).read_bytes())  # noqa: S301 - own artifact
        if manifest["model_kind"] == LightGBMModel.kind:
            model: ScoringModel = LightGBMModel.from_text((directory / LIGHTGBM_FILE).read_text())
        else:
            model = IsolationModel.from_bytes((directory / ISOLATION_FILE).read_bytes())
        return cls(domain=manifest["domain"], builder=builder, model=model,
                   threshold=float(manifest["threshold"]), info=manifest.get("info", {}),
                   ranking=_load_ranking(directory))


def _load_ranking(directory: Path) -> Ranking | None:
    """The ranking policy saved beside the model, if any (older artifacts have none)."""
    if not (directory / RANKING_FILE).exists():
        return None
    revenue = directory / REVENUE_FILE
    head = LightGBMModel.from_text(revenue.read_text()) if revenue.exists() else None
    return Ranking.from_json((directory / RANKING_FILE).read_text(), head)
