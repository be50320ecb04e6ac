"""LightGBM classifier: imbalance-aware training with early stopping, exact TreeSHAP.

Features reach LightGBM as float32, in training and in scoring alike, so a value is binned at
training time exactly as it is compared with the split thresholds when scored (and a large
matrix takes half the memory). Large frames are scored in row chunks.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

KIND = "lightgbm"
SMALL_BATCH = 2000  # below this, one thread: OpenMP start-up costs more than it saves
SCORE_CHUNK = 250_000  # rows converted and scored at a time
DTYPE = np.float32
EVAL_EVERY = 10  # rounds between validation checks (ranking the validation set every round
#                   with LightGBM's own metric took most of the training time)
METRIC = "average_precision"


class LightGBMModel:
    """A trained booster scoring feature frames (probability of the positive class)."""

    kind = KIND

    def __init__(self, booster: lgb.Booster) -> None:
        self.booster = booster

    @cached_property
    def feature_names(self) -> list[str]:
        return list(self.booster.feature_name())

    @property
    def best_rounds(self) -> int:
        """Rounds the model scores with: the best iteration when stopped early, else all."""
        return self.booster.best_iteration or self.booster.current_iteration()

    def _matrix(self, features: pd.DataFrame) -> np.ndarray:
        """Model inputs in training order (a plain array: no per-call pandas checks)."""
        return features[self.feature_names].to_numpy(dtype=DTYPE)

    def _predict(self, features: pd.DataFrame, **kwargs: bool) -> np.ndarray:
        if len(features) <= SCORE_CHUNK:
            threads = 1 if len(features) < SMALL_BATCH else 0
            return self.booster.predict(self._matrix(features), num_threads=threads, **kwargs)
        return np.concatenate([self._predict(features.iloc[start:start + SCORE_CHUNK], **kwargs)
                               for start in range(0, len(features), SCORE_CHUNK)])

    def score(self, features: pd.DataFrame) -> np.ndarray:
        return self._predict(features)

    def raw_margin(self, features: pd.DataFrame) -> np.ndarray:
        return self._predict(features, raw_score=True)

    def contributions(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Exact TreeSHAP on the raw margin: (base values, contributions per feature)."""
        contrib = self._predict(features, pred_contrib=True)
        return contrib[:, -1], contrib[:, :-1]

    def to_text(self) -> str:
        return self.booster.model_to_string()

    @classmethod
    def from_text(cls, text: str) -> LightGBMModel:
        return cls(lgb.Booster(model_str=text))


def positive_weight(y: np.ndarray, mode: str, cap: float) -> float:
    """Weight of positives: ``sqrt`` of the class ratio, the ``ratio`` itself, or ``none``."""
    return weight_of_positives(int((y == 0).sum()), int((y == 1).sum()), mode, cap)


def weight_of_positives(negatives: int, positives: int, mode: str, cap: float) -> float:
    """:func:`positive_weight` from the counts of negatives and positives."""
    ratio = float(negatives) / max(float(positives), 1.0)
    weights = {"none": 1.0, "sqrt": np.sqrt(ratio), "ratio": ratio}
    if mode not in weights:
        raise ValueError(f"unknown imbalance mode {mode!r}; use one of {sorted(weights)}")
    return float(min(weights[mode], cap))


def booster_params(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` over the defaults: binary objective, no built-in metric (:class:`EarlyStop`
    evaluates the validation data itself), column-wise histograms (on the transaction
    features, with their bagged rows and half the features per tree, 2.3 times faster per
    round than row-wise)."""
    return {"objective": "binary", "metric": "None", "verbosity": -1,
            "deterministic": True, "force_col_wise": True, **params}


class FeatureRows(lgb.Sequence):
    """Some rows of a feature frame as float32, read by LightGBM a batch at a time while it
    bins them: a Dataset of a large frame's rows without a float32 copy of all those rows."""

    batch_size = 65_536

    def __init__(self, features: pd.DataFrame, rows: np.ndarray) -> None:
        self.features, self.rows = features, rows
        self._start, self._block = 0, np.empty((0, features.shape[1]), dtype=DTYPE)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int | slice) -> np.ndarray:
        if isinstance(index, slice):
            return self._take(self.rows[index])
        # one row at a time, in increasing order, while LightGBM samples the bin boundaries
        # (as float64, which its sampling requires)
        if not self._start <= index < self._start + len(self._block):
            self._start = index
            self._block = self._take(self.rows[index:index + self.batch_size])
        return self._block[index - self._start].astype(np.float64)

    def _take(self, rows: np.ndarray) -> np.ndarray:
        return self.features.iloc[rows].to_numpy(dtype=DTYPE)


def lightgbm_dataset(features: pd.DataFrame, rows: np.ndarray, y: np.ndarray,
                     params: dict[str, Any], categorical: list[str],
                     weight: np.ndarray | None = None,
                     reference: lgb.Dataset | None = None) -> lgb.Dataset:
    """A binned (constructed) Dataset of ``features``' ``rows`` (labels and weights of those
    rows), read in float32 batches. Pass the training Dataset as ``reference`` for validation
    data (same bins)."""
    names = [str(c) for c in features.columns]
    dataset = lgb.Dataset(FeatureRows(features, rows), y, weight=weight, feature_name=names,
                          categorical_feature=[c for c in categorical if c in names],
                          params=booster_params(params), reference=reference,
                          free_raw_data=True).construct()
    if weight is None and reference is not None:
        # built by reference to a weighted Dataset, the rows would keep weights of zero
        dataset.set_field("weight", None)
    return dataset


def train_and_valid_sets(features: pd.DataFrame, y: np.ndarray, train: np.ndarray,
                         valid: np.ndarray, params: dict[str, Any], categorical: list[str],
                         sample_weight: np.ndarray | None = None
                         ) -> tuple[lgb.Dataset, lgb.Dataset]:
    """The ``train`` rows of ``features`` (positions) binned, and the ``valid`` rows on the
    same bins; ``sample_weight`` is indexed like ``features``."""
    weight = None if sample_weight is None else sample_weight[train]
    train_set = lightgbm_dataset(features, train, y[train], params, categorical, weight)
    return train_set, lightgbm_dataset(features, valid, y[valid], params, categorical,
                                       reference=train_set)


def average_precision(y: np.ndarray, scores: np.ndarray) -> float:
    """Area under the step precision-recall curve (tied scores form one step)."""
    order = np.argsort(-scores)  # the order within a tie does not change the sum
    ranked, hits = scores[order], np.cumsum(y[order])
    ends = np.append(np.flatnonzero(np.diff(ranked)), len(ranked) - 1)  # last row of each tie
    found = hits[ends]
    if not len(found) or found[-1] == 0:
        return 0.0
    return float(np.sum(found / (ends + 1) * np.diff(found, prepend=0)) / found[-1])


class EarlyStop:
    """Early stopping on validation average precision, checked every ``every`` rounds (and at
    the last): stops ``patience`` rounds after the best check, keeping the best iteration."""

    order = 30  # lgb.train runs callbacks in this order (LightGBM's early stopping uses 30)

    def __init__(self, y_valid: np.ndarray, patience: int, every: int = EVAL_EVERY) -> None:
        self.y, self.patience, self.every = np.asarray(y_valid), patience, every
        self.best, self.best_iteration = -np.inf, 0

    def _feval(self, scores: np.ndarray, _: lgb.Dataset) -> tuple[str, float, bool]:
        return METRIC, average_precision(self.y, scores), True

    def __call__(self, env: lgb.callback.CallbackEnv) -> None:
        last = env.iteration == env.end_iteration - 1
        if (env.iteration + 1) % self.every and not last:
            return
        result = env.model.eval_valid(feval=self._feval)[0]
        if result[2] > self.best:
            self.best, self.best_iteration = result[2], env.iteration
        if last or env.iteration - self.best_iteration >= self.patience:
            raise lgb.callback.EarlyStopException(
                self.best_iteration, [lgb.EvalResult(result[0], METRIC, self.best, True)])


def fit_booster(params: dict[str, Any], train: lgb.Dataset, valid: lgb.Dataset,
                num_boost_round: int, early_stopping_rounds: int) -> LightGBMModel:
    """Train on ``train``, stop early on ``valid``'s average precision. The Datasets stay
    usable for further fits (e.g. on ``train.subset(rows)``)."""
    stop = EarlyStop(valid.get_label(), early_stopping_rounds)
    booster = lgb.train(booster_params(params), train, num_boost_round=num_boost_round,
                        valid_sets=[valid], callbacks=[stop])
    return LightGBMModel(booster)


def fit_rounds(params: dict[str, Any], train: lgb.Dataset, rounds: int) -> LightGBMModel:
    """Train on ``train`` for exactly ``rounds`` rounds (no validation data)."""
    return LightGBMModel(lgb.train(booster_params(params), train, num_boost_round=rounds))


def train_lightgbm(features: pd.DataFrame, y: np.ndarray, train: np.ndarray, valid: np.ndarray,
                   params: dict[str, Any], categorical: list[str], num_boost_round: int,
                   early_stopping_rounds: int,
                   sample_weight: np.ndarray | None = None) -> LightGBMModel:
    """Train on the ``train`` rows of ``features`` (positions), stop early on the average
    precision of the ``valid`` rows."""
    train_set, valid_set = train_and_valid_sets(features, y, train, valid, params, categorical,
                                                sample_weight)
    return fit_booster(params, train_set, valid_set, num_boost_round, early_stopping_rounds)


def averaged(models: list[LightGBMModel]) -> LightGBMModel:
    """One booster scoring the mean raw margin of ``models`` (same features): every model's
    trees with their leaf values divided by the number of models. Exact TreeSHAP of the mean
    is the mean of the models' contributions, so contributions still add up to the margin."""
    if len(models) == 1:
        return models[0]
    texts = [model.to_text() for model in models]
    trees = [_scaled(block, 1 / len(models)) for text in texts for block in _tree_blocks(text)]
    head = re.sub(r"^tree_sizes=.*\n", "", texts[0][:texts[0].index("Tree=0\n")], flags=re.M)
    body = "".join(f"Tree={i}\n{tree}\n\n" for i, tree in enumerate(trees))
    return LightGBMModel.from_text(head + body + texts[0][texts[0].index(_TREES_END):])


_TREES_END = "end of trees"


def _tree_blocks(text: str) -> list[str]:
    """The lines of each tree of a model text, without their ``Tree=i`` line."""
    body = text[text.index("Tree=0\n"):text.index(_TREES_END)].strip("\n")
    return [block.split("\n", 1)[1] for block in re.split(r"\n+(?=Tree=\d+\n)", body)]


def _scaled(tree: str, factor: float) -> str:
    """A tree's lines with its leaf and internal node values multiplied by ``factor``."""
    lines = []
    for line in tree.split("\n"):
        key, _, values = line.partition("=")
        if key in ("leaf_value", "internal_value"):
            line = f"{key}=" + " ".join(repr(float(v) * factor) for v in values.split())
        lines.append(line)
    return "\n".join(lines)
