"""Declarative pipeline configuration (``pipelines/*.yaml``), validated by pydantic."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from illicitflows.modeling.ranking import RankingPolicy
from illicitflows.trade.features.config import TradeFeatureConfig
from illicitflows.transactions.features import FeatureConfig


class SplitConfig(BaseModel):
    """Temporal split: whole-day fractions, or cut-off dates (valid from, test from)."""

    model_config = ConfigDict(extra="forbid")
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    dates: tuple[str, str] | None = None

    def describe(self) -> str:
        return f"dates={','.join(self.dates)}" if self.dates else \
            f"fractions={','.join(f'{f:g}' for f in self.fractions)}"


class ModelConfig(BaseModel):
    """The learner and its parameters."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["lightgbm", "isolation-forest"] = "lightgbm"
    params: dict[str, Any] = Field(default_factory=dict)
    num_boost_round: int = Field(2000, ge=1)
    early_stopping_rounds: int = Field(100, ge=1)
    imbalance: Literal["none", "sqrt", "ratio"] = "sqrt"
    max_positive_weight: float = Field(100.0, ge=1)
    negative_sample: float = Field(
        1.0, gt=0, le=1, description="Share of negative training rows kept (every positive is "
        "kept); kept negatives weigh its inverse, so scores stay calibrated. Cuts training "
        "time on large, imbalanced data.")
    ensemble: int = Field(
        1, ge=1, description="LightGBM models fitted with seeds seed, seed + 1, ... (each its "
        "own sample of negatives); the detector scores with the mean of their raw margins (one "
        "booster of all their trees), so its exact TreeSHAP contributions still add up. The "
        "final model only: each risk-memory round fits one.")
    max_negatives: int | None = Field(
        None, ge=1, description="Upper bound on the negative training rows kept: on larger "
        "data the kept share shrinks to it, so training time stops growing with the data "
        "(none: no bound).")


class ThresholdConfig(BaseModel):
    """How the alert threshold is chosen on validation data."""

    model_config = ConfigDict(extra="forbid")
    policy: Literal["max_f1", "budget"] = "max_f1"
    budget: float = Field(0.005, gt=0, lt=1)


class PipelineBase(BaseModel):
    """What every detector pipeline has."""

    model_config = ConfigDict(extra="forbid")
    split: SplitConfig = Field(default_factory=SplitConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    threshold: ThresholdConfig = Field(default_factory=ThresholdConfig)
    seed: int = 0
    promotion_metric: str = "pr_auc"
    shap_sample: int = Field(2000, ge=10)


class TransactionsPipeline(PipelineBase):
    """``pipelines/transactions.yaml``."""

    detector: Literal["transactions"] = "transactions"
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    baseline_model: ModelConfig | None = None
    memory_folds: int = Field(
        4, ge=2, le=10, description="Risk memory training: the training period is cut into "
        "this many time folds, each remembered with the scores of a model fitted on the others.")

    @model_validator(mode="after")
    def _baseline_defaults(self) -> TransactionsPipeline:
        if self.baseline_model is None:
            self.baseline_model = self.model
        return self


def load_pipeline(path: Path, kind: type[PipelineBase]) -> PipelineBase:
    """Read and validate a pipeline YAML file."""
    with Path(path).open() as handle:
        raw = yaml.safe_load(handle) or {}
    return kind.model_validate(raw)


def _raw_baseline_model() -> ModelConfig:
    """The issue's raw LightGBM: 1,000 trees, learning rate 0.05, 63 leaves, unweighted."""
    return ModelConfig(num_boost_round=1000, early_stopping_rounds=1000, imbalance="none",
                       params={"learning_rate": 0.05, "num_leaves": 63})


class RankingGuard(BaseModel):
    """The precision the ``expected-revenue`` ranking must keep at an inspection budget."""

    model_config = ConfigDict(extra="forbid")
    budget: float = Field(0.05, gt=0, lt=1, description="Share of declarations inspected.")
    min_precision: float = Field(
        0.95, gt=0, le=1, description="Precision the validation data must hold at the budget "
        "with 95 % confidence; the exponent of the fraud probability is chosen under it.")


class RevenueModelConfig(BaseModel):
    """The second head (revenue at stake of a fraud): LightGBM regression on log1p revenue."""

    model_config = ConfigDict(extra="forbid")
    num_boost_round: int = Field(2000, ge=1)
    early_stopping_rounds: int = Field(100, ge=1)
    params: dict[str, Any] = Field(
        default_factory=dict, description="Over the fraud model's parameters.")


class TradePipeline(PipelineBase):
    """``pipelines/trade.yaml``."""

    detector: Literal["trade"] = "trade"
    features: TradeFeatureConfig = Field(default_factory=TradeFeatureConfig)
    baseline_model: ModelConfig = Field(default_factory=_raw_baseline_model)
    revenue_weight: bool = Field(
        False, description="Weight fraudulent training rows by their revenue at stake.")
    ranking: RankingPolicy = Field(
        "expected-revenue", description="What fills the inspection budget first: the fraud "
        "probability (precision), the predicted revenue at stake (revenue), or their product "
        "(expected-revenue, under ranking_guard). Label-free models rank by precision.")
    ranking_guard: RankingGuard | None = Field(
        default_factory=RankingGuard, description="None: expected-revenue is the plain "
        "product of probability and predicted revenue.")
    revenue_model: RevenueModelConfig = Field(default_factory=RevenueModelConfig)

    @model_validator(mode="after")
    def _label_free_ranks_by_precision(self) -> TradePipeline:
        if self.model.kind == "isolation-forest" and self.ranking != "precision":
            if "ranking" in self.model_fields_set:
                raise ValueError(f"ranking {self.ranking!r} needs labels (a revenue model); "
                                 "an isolation forest ranks by precision")
            self.ranking = "precision"
        return self
