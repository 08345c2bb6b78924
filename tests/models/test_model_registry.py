"""Registry: names, auto resolution, NaN tolerance and that every default model learns."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import r2_score as r2
from sklearn.metrics import roc_auc_score

from matfuse.models import get_spec, list_models, make_estimator, resolve_model_name
from matfuse.models.registry import AUTO_SMALL_DATA
from matfuse.models.subsample import SubsampledEstimator

CONCRETE = ["xgboost", "lightgbm", "rf", "svr", "krr", "gp", "linear"]


def test_list_models_covers_every_name_and_task() -> None:
    specs = {spec.name: spec for spec in list_models()}
    finetuned = {f"finetune-{e}" for e in ("selfies-ted", "smi-ted", "smi-ssed", "graph-ged")}
    learned = {"crystal-graph", "fusion-moe", "fusion-attention", *finetuned}
    assert {*CONCRETE, "auto", *learned} <= set(specs)  # (+ other end-to-end models)
    for spec in specs.values():
        assert spec.description
        if not spec.end_to_end:
            assert spec.supports("regression") and spec.supports("classification")
    graph = specs["crystal-graph"]  # reads structures itself, no encoded features
    assert graph.end_to_end and graph.input_kinds == ("structure",)
    assert graph.supports("regression") and not graph.supports("classification")
    assert specs["gp"].has_native_uncertainty("regression")
    assert not specs["gp"].has_native_uncertainty("classification")
    assert specs["rf"].has_native_uncertainty("classification")
    assert not specs["xgboost"].has_native_uncertainty("regression")


def test_unknown_name_and_task_are_rejected_with_choices() -> None:
    with pytest.raises(ValueError, match="xgboost"):
        make_estimator("xgbost", "regression")
    with pytest.raises(ValueError, match="task"):
        make_estimator("rf", "ranking")
    with pytest.raises(ValueError):
        get_spec("nope")


def test_auto_uses_forest_on_small_data_and_boosting_otherwise() -> None:
    assert resolve_model_name("auto", "regression", AUTO_SMALL_DATA - 1) == "rf"
    assert resolve_model_name("auto", "classification", 50) == "rf"
    assert resolve_model_name("auto", "regression", 5000) == "xgboost"
    assert resolve_model_name("auto", "classification", None) == "xgboost"
    assert resolve_model_name("svr", "regression", 10) == "svr"


def test_params_override_core_model_and_seed_is_applied() -> None:
    xgb_model = make_estimator("xgboost", "regression", random_state=7, n_estimators=11)
    assert xgb_model.n_estimators == 11 and xgb_model.random_state == 7
    rf = make_estimator("rf", "classification", max_depth=3)
    assert rf[-1].max_depth == 3
    clone(make_estimator("gp", "regression"))  # every entry must be clonable


@pytest.mark.parametrize("name", CONCRETE)
def test_every_default_regressor_beats_the_mean_on_nan_data(
    name: str, regression_split: tuple[np.ndarray, ...]
) -> None:
    X_train, y_train, X_test, y_test = regression_split
    assert np.isnan(X_train).any() and np.isnan(X_test).all(axis=1).any()
    model = make_estimator(name, "regression", n_samples=len(y_train)).fit(X_train, y_train)
    pred = model.predict(X_test)
    assert pred.shape == (len(y_test),) and np.isfinite(pred).all()
    assert r2(y_test, pred) > 0.5


@pytest.mark.parametrize("name", CONCRETE)
def test_every_default_classifier_ranks_separable_data(
    name: str, classification_split: tuple[np.ndarray, ...]
) -> None:
    X_train, y_train, X_test, y_test = classification_split
    model = make_estimator(name, "classification", n_samples=len(y_train))
    model.fit(X_train, y_train.astype(int))
    proba = model.predict_proba(X_test)[:, 1]
    assert np.isfinite(proba).all() and (proba >= 0).all() and (proba <= 1).all()
    assert roc_auc_score(y_test, proba) > 0.8


def test_gp_subsamples_and_warns_above_its_row_cap() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = X[:, 0] + 0.1 * rng.normal(size=120)
    gp = make_estimator("gp", "regression", max_samples=50)
    assert isinstance(gp, SubsampledEstimator)
    with pytest.warns(UserWarning, match="O\\(n\\^3\\)"):
        gp.fit(X, y)
    assert gp.n_samples_fit_ == 50
    assert r2(y, gp.predict(X)) > 0.8
