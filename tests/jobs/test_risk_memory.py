"""The memory-lean training path of the transactions model: features built in time-ordered
chunks, first-stage fits sharing one binned Dataset, chunked scoring."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from illicitflows.jobs.config import ThresholdConfig, TransactionsPipeline
from illicitflows.jobs.risk_memory import FirstStageData, add_risk_memory
from illicitflows.jobs.train_transactions import build_features
from illicitflows.jobs.training import fit_scoring_model, score_rows
from illicitflows.modeling import lgbm
from illicitflows.modeling.split import split_by_fractions
from illicitflows.transactions.features import TransactionFeatureBuilder
from illicitflows.transactions.simulate import SimulationConfig, simulate_transactions


@pytest.fixture(scope="module")
def data() -> dict:
    sim = simulate_transactions(SimulationConfig(accounts=1500, days=6, laundering_rate=0.02,
                                                 seed=11))
    frame = sim.frame.drop(columns=["typology", "attempt_id"]).sample(frac=1.0, random_state=0)
    splits = split_by_fractions(frame["timestamp"])
    builder = TransactionFeatureBuilder().fit(frame[splits == "train"])
    return {"frame": frame, "splits": splits, "builder": builder,
            "y": frame["is_laundering"].to_numpy(dtype=np.int8),
            "features": build_features(builder, frame, chunk=3000)}


@pytest.fixture(scope="module")
def pipeline() -> TransactionsPipeline:
    return TransactionsPipeline.model_validate({"model": {
        "num_boost_round": 40, "early_stopping_rounds": 10, "imbalance": "none",
        "negative_sample": 0.3, "params": {"num_leaves": 7, "min_child_samples": 20}}})


def test_chunked_features_equal_one_pass_in_float32(data) -> None:
    frame, features = data["frame"], data["features"]
    assert len(frame) > 3 * 3000  # several chunks, in shuffled input order
    one_pass = data["builder"].transform(frame)
    assert features.index.equals(frame.index)
    assert list(features.columns) == list(one_pass.columns)
    assert (features.dtypes == np.float32).all()
    np.testing.assert_array_equal(features.to_numpy(), one_pass.to_numpy(dtype=np.float32))


def test_fold_models_fit_on_subsets_of_the_shared_dataset(data, pipeline) -> None:
    features, y, splits = data["features"], data["y"], data["splits"]
    shared = FirstStageData.build(features, y, splits, data["builder"].categorical_features,
                                  pipeline)
    train = np.flatnonzero(splits == "train")
    folds = [train[::2], train[1::2]]
    models = shared.fit_folds(folds, 25)
    for fold, model in zip(folds, models, strict=True):
        outside = ~np.isin(shared.rows, fold)
        kept = shared.rows[outside]
        sliced = lgb.Dataset(features.iloc[kept].to_numpy(), y[kept],
                             weight=shared.train.get_weight()[outside],
                             reference=shared.train, feature_name=list(features.columns),
                             categorical_feature=shared.train.categorical_feature,
                             params=shared.train.get_params())
        params = {**shared.train.get_params(), "seed": 0, "num_threads": 2,
                  **pipeline.model.params, "scale_pos_weight": 1.0}
        assert model.best_rounds == 25
        assert model.to_text() == lgbm.fit_rounds(params, sliced, 25).to_text()


def test_fold_models_train_for_the_full_models_best_rounds(data, pipeline, monkeypatch) -> None:
    frame, features, y, splits = data["frame"], data["features"], data["y"], data["splits"]
    fitted: list[tuple[int, int]] = []
    original = FirstStageData.fit_folds

    def recording(self, folds, rounds):
        fitted.append((len(folds), rounds))
        return original(self, folds, rounds)

    monkeypatch.setattr(FirstStageData, "fit_folds", recording)
    builder = TransactionFeatureBuilder(pipeline.features).fit(frame[splits == "train"])
    add_risk_memory(builder, frame, features.copy(), y, splits, pipeline)
    full = builder.memory_models[0]
    assert full.booster.best_iteration > 0  # stopped early on validation
    assert fitted == [(pipeline.memory_folds, full.best_rounds)]


def test_chunked_scoring_equals_one_call(data, pipeline, monkeypatch) -> None:
    features, y, splits = data["features"], data["y"], data["splits"]
    shared = FirstStageData.build(features, y, splits, data["builder"].categorical_features,
                                  pipeline)
    model = shared.fit_full()
    whole = model.score(features)
    rows = np.flatnonzero(splits != "train")
    monkeypatch.setattr(lgbm, "SCORE_CHUNK", 1000)
    np.testing.assert_array_equal(model.score(features), whole)
    np.testing.assert_array_equal(score_rows(model, features, rows), whole[rows])
    as_float64 = pd.DataFrame(features.to_numpy(dtype=np.float64), columns=features.columns)
    np.testing.assert_array_equal(model.score(as_float64), whole)


def test_average_precision_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(3)
    y = (rng.random(5000) < 0.05).astype(np.int8)
    scores = np.round(rng.random(5000) + y * 0.3, 2)  # many ties
    assert lgbm.average_precision(y, scores) == pytest.approx(average_precision_score(y, scores),
                                                              abs=1e-12)
    assert lgbm.average_precision(np.zeros(3), np.arange(3.0)) == 0.0


def test_checking_every_round_stops_where_lightgbm_does(data, pipeline) -> None:
    features, y, splits = data["features"], data["y"], data["splits"]
    shared = FirstStageData.build(features, y, splits, data["builder"].categorical_features,
                                  pipeline)
    params = {**lgbm.booster_params({"num_leaves": 7, "min_child_samples": 20, "seed": 0}),
              "metric": "average_precision"}
    theirs = lgb.train(params, shared.train, num_boost_round=60, valid_sets=[shared.valid],
                       callbacks=[lgb.early_stopping(5, verbose=False)])
    ours = lgb.train({**params, "metric": "None"}, shared.train, num_boost_round=60,
                     valid_sets=[shared.valid],
                     callbacks=[lgbm.EarlyStop(shared.valid.get_label(), 5, every=1)])
    assert ours.best_iteration == theirs.best_iteration
    assert ours.best_score["valid_0"]["average_precision"] == pytest.approx(
        theirs.best_score["valid_0"]["average_precision"], abs=1e-12)
    sparse = lgb.train({**params, "metric": "None"}, shared.train, num_boost_round=60,
                       valid_sets=[shared.valid],
                       callbacks=[lgbm.EarlyStop(shared.valid.get_label(), 5, every=4)])
    assert sparse.best_iteration % 4 == 0 or sparse.best_iteration == 60


def test_two_memory_rounds_serve_what_training_saw_outside_the_training_period(data) -> None:
    frame, y, splits = data["frame"], data["y"], data["splits"]
    pipeline = TransactionsPipeline.model_validate({
        "features": {"memory_rounds": 2}, "memory_folds": 3,
        "model": {"num_boost_round": 30, "early_stopping_rounds": 10, "imbalance": "none",
                  "params": {"num_leaves": 7, "min_child_samples": 20}}})
    builder = TransactionFeatureBuilder(pipeline.features).fit(frame[splits == "train"])
    features = add_risk_memory(builder, frame, build_features(builder, frame, chunk=3000), y,
                               splits, pipeline)
    assert len(builder.memory_models) == 2
    assert list(features.columns) == builder.feature_names
    served = builder.transform(frame)  # what the detector computes, both rounds attached
    outside = splits != "train"
    memory = [name for name in builder.feature_names if "prior_risk" in name]
    assert any(name.endswith("_r2") for name in memory)
    np.testing.assert_array_equal(features.loc[outside, memory].to_numpy(),
                                  served.loc[outside, memory].to_numpy(dtype=np.float32))
    inside = features.loc[~outside, memory].to_numpy()
    assert not np.array_equal(inside, served.loc[~outside, memory].to_numpy(dtype=np.float32),
                              equal_nan=True)  # training rows remember out-of-fold scores


def test_datasets_read_in_batches_bin_and_train_as_one_matrix(data, pipeline,
                                                               monkeypatch) -> None:
    features, y, splits = data["features"], data["y"], data["splits"]
    monkeypatch.setattr(lgbm.FeatureRows, "batch_size", 1000)  # several batches and blocks
    rows, valid = np.flatnonzero(splits == "train"), np.flatnonzero(splits == "valid")
    # bins from every row (fewer than LightGBM's sample size), read a row at a time in blocks
    params = lgbm.booster_params({"num_leaves": 7, "min_child_samples": 20, "seed": 0})
    batched = lgbm.lightgbm_dataset(features, rows, y[rows], params, [])
    whole = lgb.Dataset(features.iloc[rows].to_numpy(), y[rows], params=params,
                        feature_name=list(features.columns)).construct()
    assert 3 * 1000 < len(rows) < params.get("bin_construct_sample_cnt", 200_000)
    ours, theirs = (lgb.train(params, dataset, num_boost_round=20) for dataset in (batched, whole))
    assert ours.model_to_string() == theirs.model_to_string()
    weighted = lgbm.lightgbm_dataset(features, rows, y[rows], params, [],
                                     weight=np.full(len(rows), 2.0))
    valid_set = lgbm.lightgbm_dataset(features, valid, y[valid], params, [], reference=weighted)
    assert valid_set.num_data() == len(valid)
    assert valid_set.get_weight() is None  # not the zeros LightGBM gives by reference
    np.testing.assert_array_equal(valid_set.get_label(), y[valid])


def test_an_ensemble_scores_the_mean_margin_and_its_contributions_add_up(data,
                                                                         pipeline) -> None:
    features, y, splits = data["features"], data["y"], data["splits"]
    model = pipeline.model.model_copy(update={"ensemble": 3})
    single = fit_scoring_model(features, y, splits, pipeline.model, ThresholdConfig(), [], 5)
    fitted = fit_scoring_model(features, y, splits, model, ThresholdConfig(), [], 5)
    members = [fit_scoring_model(features, y, splits, pipeline.model, ThresholdConfig(), [],
                                 seed).model for seed in (5, 6, 7)]
    assert single.model.to_text() == members[0].to_text()
    assert len({m.to_text().split("parameters:")[0] for m in members}) == 3  # different trees
    assert fitted.best_iterations == [m.booster.best_iteration for m in members]
    merged = lgbm.LightGBMModel.from_text(fitted.model.to_text())  # as registered
    test = features.iloc[np.flatnonzero(splits == "test")]
    margins = np.mean([m.raw_margin(test) for m in members], axis=0)
    np.testing.assert_allclose(merged.raw_margin(test), margins, atol=1e-12)
    np.testing.assert_allclose(merged.score(test), 1 / (1 + np.exp(-margins)), atol=1e-12)
    np.testing.assert_allclose(fitted.scores[splits == "test"], merged.score(test), atol=1e-12)
    assert np.isnan(fitted.scores[splits == "train"]).all()  # nothing reads them
    base, contributions = merged.contributions(test)
    np.testing.assert_allclose(base + contributions.sum(axis=1), margins, atol=1e-9)
    np.testing.assert_allclose(
        contributions, np.mean([m.contributions(test)[1] for m in members], axis=0), atol=1e-9)
    assert lgbm.averaged(members[:1]) is members[0]
