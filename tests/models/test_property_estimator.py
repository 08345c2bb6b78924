"""PropertyEstimator behaviour: sklearn contract, tasks, sparse labels, NaN input, uncertainty."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import r2_score, roc_auc_score

from matfuse.models import PropertyEstimator, infer_task_types

FAST = {"n_estimators": 60}  # keeps booster/forest tests well under a second


def test_sklearn_contract_get_set_params_and_clone() -> None:
    est = PropertyEstimator(model="rf", alpha=0.2, model_params={"n_estimators": 10})
    params = est.get_params()
    assert params["model"] == "rf" and params["alpha"] == 0.2 and params["tune_trials"] == 0
    copy = clone(est)
    assert copy is not est and copy.get_params() == params
    est.set_params(uncertainty="ensemble", ensemble_size=3)
    assert est.uncertainty == "ensemble" and est.ensemble_size == 3
    assert not hasattr(est, "task_types_")  # __init__ stores params only


def test_fit_returns_self_and_predictions_are_two_dimensional(
    regression_split: tuple[np.ndarray, ...],
) -> None:
    X_train, y_train, X_test, y_test = regression_split
    est = PropertyEstimator(model="xgboost", model_params=FAST)
    assert est.fit(X_train, y_train) is est
    pred = est.predict(X_test)
    assert pred.shape == (len(y_test), 1)
    assert r2_score(y_test, pred[:, 0]) > 0.5
    assert est.task_types_ == ["regression"] and est.n_targets_ == 1
    assert est.uncertainty_ == ["conformal"] and est.predict_std(X_test) is None
    assert est.predict_interval(X_test).shape == (len(y_test), 1, 2)


def test_task_inference_and_validation() -> None:
    Y = np.array([[0.0, 1.5, 1.0], [1.0, 2.5, np.nan], [np.nan, 0.1, 0.0], [1.0, 3.0, 1.0]])
    assert infer_task_types(Y) == ["classification", "regression", "classification"]
    assert infer_task_types(Y, ["regression", "auto", "auto"])[0] == "regression"
    with pytest.raises(ValueError, match="0/1"):
        infer_task_types(Y, "classification")
    with pytest.raises(ValueError, match="entries"):
        infer_task_types(Y, ["auto"])
    with pytest.raises(ValueError, match="no labels"):
        infer_task_types(np.full((3, 1), np.nan))


def test_multitask_with_forty_percent_missing_labels(
    make_regression: Callable[..., tuple[np.ndarray, np.ndarray]],
    make_classification: Callable[..., tuple[np.ndarray, np.ndarray]],
) -> None:
    X, y_reg = make_regression(360, seed=3)
    _, y_clf = make_classification(360, seed=3)
    y_clf2 = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) > 0).astype(float)
    Y = np.column_stack([y_clf, y_reg, y_clf2])
    rng = np.random.default_rng(0)
    missing = rng.random(Y.shape) < 0.4
    Y_sparse = np.where(missing, np.nan, Y)
    train, test = slice(0, 260), slice(260, None)

    est = PropertyEstimator(model="xgboost", model_params=FAST).fit(X[train], Y_sparse[train])
    assert est.task_types_ == ["classification", "regression", "classification"]
    pred = est.predict(X[test])
    assert pred.shape == (100, 3) and np.isfinite(pred).all()  # every row, every target
    assert ((pred[:, [0, 2]] >= 0) & (pred[:, [0, 2]] <= 1)).all()
    assert roc_auc_score(Y[test, 0], pred[:, 0]) > 0.8
    assert r2_score(Y[test, 1], pred[:, 1]) > 0.4
    bounds = est.predict_interval(X[test])
    assert np.isnan(bounds[:, [0, 2]]).all() and np.isfinite(bounds[:, 1]).all()
    assert est.uncertainty_ == ["none", "conformal", "none"]


@pytest.mark.parametrize("model", ["xgboost", "lightgbm", "rf", "svr", "linear"])
def test_nan_and_inf_rows_in_X_still_get_predictions(
    model: str, regression_split: tuple[np.ndarray, ...]
) -> None:
    X_train, y_train, X_test, _ = regression_split
    X_bad = X_test[:6].copy()
    X_bad[0] = np.nan  # invalid molecule for every encoder
    X_bad[1, :6] = np.nan  # one encoder block missing
    X_bad[2, 3] = np.inf  # descriptor overflow
    est = PropertyEstimator(model=model, uncertainty="none", model_params=None)
    if model in ("xgboost", "lightgbm", "rf"):
        est.set_params(model_params=FAST)
    pred = est.fit(X_train, y_train).predict(X_bad)
    assert pred.shape == (6, 1) and np.isfinite(pred).all()
    assert np.isinf(X_bad[2, 3])  # the caller's array was not modified


@pytest.mark.parametrize(("model", "conformal"), [("xgboost", "cv_plus"), ("linear", "split")])
def test_conformal_intervals_reach_nominal_coverage(
    model: str, conformal: str, make_regression: Callable[..., tuple[np.ndarray, np.ndarray]]
) -> None:
    X, y = make_regression(900, seed=4, noise=0.5)
    X_train, y_train, X_test, y_test = X[:400], y[:400], X[400:], y[400:]
    est = PropertyEstimator(
        model=model,
        uncertainty="conformal",
        conformal=conformal,
        alpha=0.1,
        model_params=FAST if model == "xgboost" else None,
    ).fit(X_train, y_train)
    assert est.conformal_methods_ == [conformal]
    bounds = est.predict_interval(X_test)[:, 0, :]
    assert (bounds[:, 0] <= bounds[:, 1]).all()
    coverage = np.mean((y_test >= bounds[:, 0]) & (y_test <= bounds[:, 1]))
    assert 0.8 <= coverage <= 0.98, coverage  # ~0.9 nominal, and not trivially wide
    if conformal == "split":  # same model for points and intervals: the point lies inside
        point = est.predict(X_test)[:, 0]
        assert ((bounds[:, 0] <= point) & (point <= bounds[:, 1])).all()


def test_cv_plus_intervals_in_row_batches_equal_one_pass(
    monkeypatch: pytest.MonkeyPatch,
    make_regression: Callable[..., tuple[np.ndarray, np.ndarray]],
) -> None:
    """CV+ holds (test x calibration) arrays; batching rows bounds memory, not the result."""
    from matfuse.models import conformal

    X, y = make_regression(300, seed=7, noise=0.5)
    est = PropertyEstimator(model="linear", uncertainty="conformal", conformal="cv_plus")
    est.fit(X[:200], y[:200])
    monkeypatch.setattr(conformal, "CV_PLUS_BATCH_ROWS", 10_000)
    one_pass = est.predict_interval(X[200:])
    monkeypatch.setattr(conformal, "CV_PLUS_BATCH_ROWS", 7)  # 100 rows: 15 uneven batches
    batched = est.predict_interval(X[200:])
    assert batched.shape == one_pass.shape == (100, 1, 2)
    # the same arithmetic per row; only BLAS rounding may differ with the batch shape
    np.testing.assert_allclose(batched, one_pass, rtol=1e-12, atol=1e-12)


def test_auto_conformal_scheme_depends_on_size(
    make_regression: Callable[..., tuple[np.ndarray, np.ndarray]],
) -> None:
    X, y = make_regression(60, seed=5)
    est = PropertyEstimator(model="linear", uncertainty="conformal").fit(X, y)
    assert est.conformal_methods_ == ["cv_plus"]


def test_gp_std_grows_away_from_training_data() -> None:
    rng = np.random.default_rng(6)
    X = rng.uniform(-1, 1, size=(80, 2))
    y = np.sin(2 * X[:, 0]) + X[:, 1] + 0.05 * rng.normal(size=80)
    est = PropertyEstimator(model="gp").fit(X, y)
    assert est.uncertainty_ == ["native"]
    near = est.predict_std(rng.uniform(-0.8, 0.8, size=(30, 2)))
    far = est.predict_std(rng.uniform(4, 6, size=(30, 2)))
    assert near is not None and far is not None
    assert (near > 0).all() and far.mean() > 2 * near.mean()
    assert np.isnan(est.predict_interval(X[:3])).all()  # native mode: no conformal intervals


def test_forest_and_ensemble_spreads(
    regression_split: tuple[np.ndarray, ...], classification_split: tuple[np.ndarray, ...]
) -> None:
    X_train, y_train, X_test, _ = regression_split
    Xc_train, yc_train, _, _ = classification_split
    Y = np.column_stack([y_train, yc_train])
    rf = PropertyEstimator(model="rf", uncertainty="native", model_params=FAST).fit(X_train, Y)
    std = rf.predict_std(X_test)
    assert std is not None and std.shape == (len(X_test), 2) and (std >= 0).all()
    assert std[:, 0].mean() > 0 and std[:, 1].mean() > 0

    ens = PropertyEstimator(
        model="xgboost", uncertainty="ensemble", ensemble_size=3, model_params=FAST
    ).fit(X_train, y_train)
    assert len(ens.target_models_[0].replicas) == 3
    e_std = ens.predict_std(X_test)
    assert e_std is not None and e_std.shape == (len(X_test), 1) and (e_std[:, 0] > 0).all()


def test_mixed_std_gives_nan_only_for_targets_without_spread(
    regression_split: tuple[np.ndarray, ...],
) -> None:
    X_train, y_train, X_test, _ = regression_split
    Y = np.column_stack([y_train, (y_train > 3).astype(float)])
    est = PropertyEstimator(model="rf", model_params=FAST).fit(X_train, Y)
    assert est.uncertainty_ == ["native", "none"]
    std = est.predict_std(X_test)
    assert std is not None and np.isfinite(std[:, 0]).all() and np.isnan(std[:, 1]).all()


def test_invalid_configurations_fail_loudly(regression_split: tuple[np.ndarray, ...]) -> None:
    X_train, y_train, X_test, _ = regression_split
    with pytest.raises(ValueError, match="native"):
        PropertyEstimator(model="xgboost", uncertainty="native").fit(X_train, y_train)
    with pytest.raises(ValueError, match="unknown model"):
        PropertyEstimator(model="catboost").fit(X_train, y_train)
    with pytest.raises(ValueError, match="alpha"):
        PropertyEstimator(alpha=1.5).fit(X_train, y_train)
    y_few = np.full_like(y_train, np.nan)
    y_few[:3] = 1.0
    with pytest.raises(ValueError, match="labelled rows"):
        PropertyEstimator().fit(X_train, y_few)
    est = PropertyEstimator(model="linear", uncertainty="none").fit(X_train, y_train)
    with pytest.raises(ValueError, match="features"):
        est.predict(X_test[:, :5])


def test_single_class_target_predicts_prior_with_warning(
    regression_split: tuple[np.ndarray, ...],
) -> None:
    X_train, _, X_test, _ = regression_split
    y = np.zeros(len(X_train))
    with pytest.warns(UserWarning, match="single class"):
        est = PropertyEstimator(model="xgboost").fit(X_train, y)
    np.testing.assert_array_equal(est.predict(X_test), 0.0)


def test_refits_are_deterministic(classification_split: tuple[np.ndarray, ...]) -> None:
    X_train, y_train, X_test, _ = classification_split
    est = PropertyEstimator(model="lightgbm", uncertainty="ensemble", model_params=FAST)
    first = est.fit(X_train, y_train).predict(X_test)
    second = clone(est).fit(X_train, y_train).predict(X_test)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("uncertainty", ["none", "conformal", "ensemble"])
def test_fit_is_independent_of_the_target_unit(
    regression_split: tuple[np.ndarray, ...], uncertainty: str, tmp_path
) -> None:
    """A property in tiny units (1e-5) must fit as well as the same property in unit scale.

    Without target standardisation XGBoost drops every split (gain below its 1e-6 floor) and
    predicts the mean; thermal expansion coefficients are exactly such a target.
    """
    from matfuse.models import load_estimator, save_estimator

    X_train, y_train, X_test, y_test = regression_split
    params = dict(model="xgboost", model_params=FAST, uncertainty=uncertainty, ensemble_size=3)
    unit = PropertyEstimator(**params).fit(X_train, y_train)
    tiny = PropertyEstimator(**params).fit(X_train, y_train * 1e-5)
    pred_tiny = tiny.predict(X_test)[:, 0]
    assert r2_score(y_test * 1e-5, pred_tiny) > 0.5
    np.testing.assert_allclose(pred_tiny, unit.predict(X_test)[:, 0] * 1e-5, rtol=1e-3, atol=1e-9)
    if uncertainty == "ensemble":
        std = tiny.predict_std(X_test)[:, 0]
        np.testing.assert_allclose(std, unit.predict_std(X_test)[:, 0] * 1e-5, rtol=1e-3)
    if uncertainty == "conformal":
        lo, hi = tiny.predict_interval(X_test)[:, 0].T
        assert np.mean((lo <= y_test * 1e-5) & (y_test * 1e-5 <= hi)) > 0.7
    save_estimator(tiny, tmp_path / "m")
    np.testing.assert_allclose(load_estimator(tmp_path / "m").predict(X_test)[:, 0], pred_tiny)


def test_forest_spread_equals_the_per_tree_checked_computation() -> None:
    """The float32-once fast path gives the same std as calling every tree the plain way."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    from matfuse.models.uncertainty import native_std

    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, 30))
    y = X[:, 0] + 0.1 * rng.normal(size=120)
    X_new = rng.normal(size=(40, 30))
    reg = RandomForestRegressor(n_estimators=25, random_state=0).fit(X, y)
    slow = np.stack([t.predict(X_new) for t in reg.estimators_]).std(axis=0)
    np.testing.assert_array_equal(native_std(reg, X_new, "regression"), slow)

    clf = RandomForestClassifier(n_estimators=25, random_state=0).fit(X, (y > 0).astype(int))
    slow_c = np.stack([t.predict_proba(X_new)[:, 1] for t in clf.estimators_]).std(axis=0)
    np.testing.assert_array_equal(native_std(clf, X_new, "classification"), slow_c)

    # a forest fitted on NaN (sklearn routes missing values) keeps the checked path
    X_nan = X.copy()
    X_nan[::7, 0] = np.nan
    reg_nan = RandomForestRegressor(n_estimators=10, random_state=0).fit(X_nan, y)
    X_new[::5, 0] = np.nan
    slow_n = np.stack([t.predict(X_new) for t in reg_nan.estimators_]).std(axis=0)
    np.testing.assert_array_equal(native_std(reg_nan, X_new, "regression"), slow_n)
