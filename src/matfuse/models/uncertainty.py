"""Point predictions and non-conformal uncertainty: native spreads and seed/bootstrap ensembles.

Conformal intervals live in :mod:`matfuse.models.conformal`; this module covers the std-like
quantities returned by ``PropertyEstimator.predict_std``. They are *spreads*, not calibrated
intervals: a GP std is only as good as its kernel, and forest/ensemble spreads measure model
disagreement (epistemic uncertainty) but not label noise. Use them to rank molecules by
reliability; use conformal intervals when coverage matters.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline
from sklearn.utils import resample

from matfuse.models.registry import get_spec
from matfuse.models.subsample import SubsampledEstimator

__all__ = [
    "UNCERTAINTY_MODES",
    "fit_ensemble",
    "native_std",
    "point_prediction",
    "resolve_uncertainty",
]

UNCERTAINTY_MODES: tuple[str, ...] = ("auto", "none", "native", "ensemble", "conformal")


def resolve_uncertainty(requested: str, model_name: str, task: str) -> str:
    """Resolve the uncertainty mode of one target.

    ``auto``: regression with a model that has a native spread (``gp``, ``rf``) -> ``native``;
    other regression -> ``conformal``; classification -> ``none`` (predicted probabilities already
    express confidence). ``conformal`` on a classification target resolves to ``none`` because
    matfuse only produces regression intervals. ``native`` on a model without one is an error
    rather than a silent downgrade.
    """
    if requested not in UNCERTAINTY_MODES:
        raise ValueError(f"uncertainty must be one of {UNCERTAINTY_MODES}, got {requested!r}")
    spec = get_spec(model_name)
    if requested == "auto":
        if task == "classification":
            return "none"
        return "native" if spec.has_native_uncertainty(task) else "conformal"
    if requested == "conformal" and task == "classification":
        return "none"
    if requested == "native" and not spec.has_native_uncertainty(task):
        raise ValueError(
            f"model {model_name!r} has no native uncertainty for {task}; "
            "use model='rf' or 'gp', or uncertainty='ensemble' or 'conformal'"
        )
    return requested


def positive_proba(estimator: BaseEstimator, X: NDArray[np.float64]) -> NDArray[np.float64]:
    """Probability of class 1; zero if the model never saw class 1 (single-class fallback)."""
    proba = np.asarray(estimator.predict_proba(X), dtype=np.float64)
    classes = list(np.asarray(estimator.classes_).tolist())
    if 1 in classes:
        return proba[:, classes.index(1)]
    return np.zeros(X.shape[0])


def point_prediction(
    estimator: BaseEstimator, X: NDArray[np.float64], task: str
) -> NDArray[np.float64]:
    """Regression value or positive-class probability, as a 1-D float array."""
    if task == "classification":
        return positive_proba(estimator, X)
    return np.asarray(estimator.predict(X), dtype=np.float64).reshape(-1)


def native_std(estimator: BaseEstimator, X: NDArray[np.float64], task: str) -> NDArray[np.float64]:
    """Model-intrinsic predictive spread.

    GP regression: posterior predictive std (including the fitted white-noise level), in y units.
    Random forest: std across trees of their predictions (regression) or positive-class
    probabilities (classification), i.e. ensemble disagreement.
    """
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.gaussian_process import GaussianProcessRegressor

    model = estimator.estimator_ if isinstance(estimator, SubsampledEstimator) else estimator
    Xt: NDArray[np.float64] = X
    final = model
    if isinstance(model, Pipeline):
        Xt = model[:-1].transform(X)
        final = model[-1]
    if isinstance(final, GaussianProcessRegressor):
        _, std = final.predict(Xt, return_std=True)
        return np.asarray(std, dtype=np.float64)
    if isinstance(final, RandomForestRegressor):
        X32, checked = _tree_input(Xt)
        per_tree = np.stack([tree.predict(X32, check_input=checked) for tree in final.estimators_])
        return per_tree.std(axis=0)
    if isinstance(final, RandomForestClassifier):
        classes = list(np.asarray(final.classes_).tolist())
        if 1 not in classes:
            return np.zeros(X.shape[0])
        col = classes.index(1)
        X32, checked = _tree_input(Xt)
        per_tree = np.stack(
            [tree.predict_proba(X32, check_input=checked)[:, col] for tree in final.estimators_]
        )
        return per_tree.std(axis=0)
    if callable(getattr(final, "predict_std", None)):  # learned fusion: its ensemble spread
        return np.asarray(final.predict_std(Xt), dtype=np.float64)
    raise TypeError(f"{type(final).__name__} has no native uncertainty ({task})")


def _tree_input(X: NDArray[np.float64]) -> tuple[NDArray[np.float32], bool]:
    """``X`` as the float32 C array trees read, and whether each tree must still check it.

    Every ``tree.predict`` validates and copies its input to float32 again; over hundreds of
    trees on a wide fused matrix that copying was most of the cost (about 8x the tree
    traversal). Converting once and skipping the per-tree check gives identical values; a
    matrix with NaN (a forest fitted without an imputer) keeps the checks, which route
    missing values the way the forest was trained to.
    """
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    return X32, bool(np.isnan(X32).any())


def fit_ensemble(
    build: Callable[[int], BaseEstimator],
    X: NDArray[np.float64],
    y: NDArray[np.float64],
    task: str,
    size: int,
    random_state: int,
) -> list[BaseEstimator]:
    """Fit ``size`` replicas, each with its own seed on its own bootstrap resample.

    Seeds alone give almost no diversity for deterministic models (SVR, ridge), so rows are
    bootstrapped too; for classification the bootstrap is stratified so that every replica sees
    both classes even on imbalanced assays.
    """
    if size < 2:
        raise ValueError(f"an ensemble needs at least 2 members, got {size}")
    replicas: list[BaseEstimator] = []
    rows = np.arange(X.shape[0])
    for i in range(size):
        seed = random_state + i
        idx = resample(
            rows,
            replace=True,
            random_state=seed,
            stratify=y if task == "classification" else None,
        )
        replicas.append(build(seed).fit(X[idx], y[idx]))
    return replicas
