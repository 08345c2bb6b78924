"""``model_params`` keyed by registry name: a kind's default for ``auto`` reaches only its model."""

from __future__ import annotations

import numpy as np
import pytest

from matfuse.models import PropertyEstimator


def _data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    return X, X[:, 0] + 0.1 * rng.normal(size=n)


def _core(est: PropertyEstimator):
    """The fitted sklearn/XGBoost model of target 0 (unwrapping the NaN-safe pipeline)."""
    model = est.target_models_[0].estimator
    return model[-1] if hasattr(model, "steps") else model


def test_per_model_entry_applies_to_the_resolved_model():
    X, y = _data(300)
    params = {"xgboost": {"n_estimators": 7, "max_depth": 2}, "rf": {"n_estimators": 9}}
    est = PropertyEstimator(uncertainty="none", model_params=params).fit(X, y)
    assert est.models_ == ["xgboost"]
    assert _core(est).get_params()["n_estimators"] == 7
    assert _core(est).get_params()["max_depth"] == 2


def test_small_data_forest_does_not_get_the_xgboost_entry():
    X, y = _data(60)  # below AUTO_SMALL_DATA: auto picks the random forest
    params = {"xgboost": {"n_estimators": 7, "max_depth": 2}}
    est = PropertyEstimator(uncertainty="none", model_params=params).fit(X, y)
    assert est.models_ == ["rf"]
    forest = _core(est)
    assert forest.get_params()["max_depth"] is None and forest.get_params()["n_estimators"] == 500


def test_flat_params_still_apply_to_every_model():
    X, y = _data(60)
    est = PropertyEstimator(uncertainty="none", model_params={"n_estimators": 11}).fit(X, y)
    assert _core(est).get_params()["n_estimators"] == 11


def test_mixed_forms_are_refused():
    X, y = _data(60)
    with pytest.raises(ValueError, match="not a mix"):
        PropertyEstimator(model_params={"xgboost": {"max_depth": 2}, "n_estimators": 5}).fit(X, y)
    with pytest.raises(ValueError, match="not a mix"):
        PropertyEstimator(model_params={"xgboost": 3}).fit(X, y)


def test_per_model_params_survive_save_and_load(tmp_path):
    X, y = _data(300)
    params = {"xgboost": {"n_estimators": 7}}
    est = PropertyEstimator(uncertainty="none", model_params=params).fit(X, y)
    est.save(tmp_path / "m")
    loaded = PropertyEstimator.load(tmp_path / "m")
    assert loaded.get_params()["model_params"] == params
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X), strict=True)
