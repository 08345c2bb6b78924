"""Optuna tuning: search spaces, reproducibility, fixed parameters and estimator integration."""

from __future__ import annotations

import numpy as np
import optuna

from matfuse.models import PropertyEstimator, tune
from matfuse.models.tuning import search_space


def test_tuned_xgboost_params_lie_in_the_search_space(
    regression_split: tuple[np.ndarray, ...],
) -> None:
    X_train, y_train, _, _ = regression_split
    fixed = {"n_estimators": 40}
    best = tune("xgboost", "regression", X_train, y_train, n_trials=3, fixed_params=fixed)
    dims = {d.name: d for d in search_space("xgboost", "regression", X_train.shape[1])}
    assert best and set(best) <= set(dims) and "n_estimators" not in best
    for name, value in best.items():
        assert dims[name].low <= value <= dims[name].high
    again = tune("xgboost", "regression", X_train, y_train, n_trials=3, fixed_params=fixed)
    assert again == best  # seeded sampler and folds


def test_classification_tuning_ignores_missing_labels(
    classification_split: tuple[np.ndarray, ...],
) -> None:
    X_train, y_train, _, _ = classification_split
    y = y_train.copy()
    y[::4] = np.nan
    best = tune("rf", "classification", X_train, y, n_trials=2, fixed_params={"n_estimators": 30})
    assert set(best) == {"max_features", "min_samples_leaf"}


def test_models_with_internal_fitting_are_not_searched(
    regression_split: tuple[np.ndarray, ...],
) -> None:
    X_train, y_train, _, _ = regression_split
    assert tune("gp", "regression", X_train, y_train, n_trials=5) == {}
    assert tune("linear", "regression", X_train, y_train, n_trials=5) == {}
    assert {d.name for d in search_space("svr", "classification", 10)} == {"C", "gamma"}


def test_optuna_verbosity_is_restored(regression_split: tuple[np.ndarray, ...]) -> None:
    X_train, y_train, _, _ = regression_split
    before = optuna.logging.get_verbosity()
    tune("krr", "regression", X_train, y_train, n_trials=1)
    assert optuna.logging.get_verbosity() == before


def test_estimator_tunes_each_target_but_keeps_user_params(
    regression_split: tuple[np.ndarray, ...],
) -> None:
    X_train, y_train, X_test, _ = regression_split
    Y = np.column_stack([y_train, -y_train])
    est = PropertyEstimator(
        model="krr", uncertainty="none", tune_trials=3, model_params={"alpha": 0.05}
    ).fit(X_train, Y)
    assert len(est.tuned_params_) == 2
    assert all(set(p) == {"gamma"} for p in est.tuned_params_)
    assert est.predict(X_test).shape == (len(X_test), 2)
