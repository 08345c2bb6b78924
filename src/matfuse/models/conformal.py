"""Conformal prediction intervals for regression targets, delegated to MAPIE 1.x.

Calibration scheme (``method="auto"``):

* up to :data:`CV_PLUS_MAX_SAMPLES` labelled rows: **CV+** (``CrossConformalRegressor``,
  ``method="plus"``, shuffled K-fold). Every row is used both to train and, out of fold, to
  calibrate, which matters on small QSAR sets; it costs K + 1 fits. Point predictions come from
  the model refitted on all rows. CV+ guarantees coverage >= 1 - 2*alpha in theory and is close to
  1 - alpha in practice.
* above it: **split conformal** (``SplitConformalRegressor``). A ``calibration_size`` fraction is
  held out, the model is fitted on the rest and *that same model* serves both point predictions
  and intervals, so the marginal >= 1 - alpha guarantee holds exactly and every interval contains
  its point prediction. The price is that point predictions ignore the held-out fraction; with
  thousands of rows that loss is small, while K + 1 boosting fits would not be.

Conformal coverage is marginal (on average over exchangeable test molecules), not conditional on
a chemotype, and it assumes the test set looks like the training set.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator
from sklearn.model_selection import KFold, train_test_split

__all__ = [
    "CONFORMAL_METHODS",
    "CV_PLUS_MAX_SAMPLES",
    "conformal_interval",
    "conformal_predict",
    "fit_conformal",
    "resolve_conformal_method",
]

CONFORMAL_METHODS: tuple[str, ...] = ("auto", "cv_plus", "split")
#: Largest labelled-set size for which ``auto`` uses CV+ rather than split conformal. Raised
#: from 2000 after measuring what split conformal's held-out fifth costs the point model: on
#: perov_5 (3,408 fit rows, default structure encoders, XGBoost) test MAE 0.1047 with split vs
#: 0.0989 with CV+ (3 seeds, benchmarks/results/structure_defaults.md), at ~50 s instead of ~8 s
#: of fitting. Above 5000 rows the fifth matters less and six boosting fits cost minutes.
CV_PLUS_MAX_SAMPLES = 5000


def resolve_conformal_method(method: str, n_samples: int) -> str:
    """``auto`` -> ``cv_plus`` for small data, ``split`` otherwise (see module docstring)."""
    if method not in CONFORMAL_METHODS:
        raise ValueError(f"conformal must be one of {CONFORMAL_METHODS}, got {method!r}")
    if method == "auto":
        return "cv_plus" if n_samples <= CV_PLUS_MAX_SAMPLES else "split"
    return method


def fit_conformal(
    estimator: BaseEstimator,
    X: NDArray[np.float64],
    y: NDArray[np.float64],
    *,
    alpha: float,
    method: str,
    cv: int = 5,
    calibration_size: float = 0.2,
    random_state: int = 0,
) -> Any:
    """Fit and calibrate a MAPIE regressor around an unfitted ``estimator``.

    ``method`` must already be resolved (``cv_plus`` or ``split``). Returns the fitted
    ``CrossConformalRegressor`` or ``SplitConformalRegressor``.
    """
    from mapie.regression import CrossConformalRegressor, SplitConformalRegressor

    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if method == "cv_plus":
        conformal = CrossConformalRegressor(
            estimator,
            confidence_level=1.0 - alpha,
            method="plus",
            cv=KFold(n_splits=cv, shuffle=True, random_state=random_state),
        )
        return conformal.fit_conformalize(X, y)
    if method == "split":
        X_fit, X_cal, y_fit, y_cal = train_test_split(
            X, y, test_size=calibration_size, random_state=random_state
        )
        conformal = SplitConformalRegressor(estimator, confidence_level=1.0 - alpha, prefit=False)
        return conformal.fit(X_fit, y_fit).conformalize(X_cal, y_cal)
    raise ValueError(f"unresolved conformal method {method!r}; expected 'cv_plus' or 'split'")


def _is_cross(conformal: Any) -> bool:
    from mapie.regression import CrossConformalRegressor

    return isinstance(conformal, CrossConformalRegressor)


def conformal_predict(conformal: Any, X: NDArray[np.float64]) -> NDArray[np.float64]:
    """Point predictions: the all-rows refit for CV+, the calibrated model for split."""
    if _is_cross(conformal):
        pred = conformal.predict(X, aggregate_point_predictions=None)
    else:
        pred = conformal.predict(X)
    return np.asarray(pred, dtype=np.float64).reshape(-1)


#: CV+ builds (test rows x calibration rows) arrays, several at once: 50,000 screened rows
#: against 4,600 calibration rows took 7 GB. Each row's interval depends only on that row, so
#: rows go through in batches of this many (at most ~20 MB per array at 5,000 calibration rows).
CV_PLUS_BATCH_ROWS = 512


def conformal_interval(conformal: Any, X: NDArray[np.float64]) -> NDArray[np.float64]:
    """Lower/upper bounds, shape (n, 2), at the confidence level fixed at fit time."""
    if not _is_cross(conformal):
        _, bounds = conformal.predict_interval(X)
        return np.asarray(bounds, dtype=np.float64)[:, :, 0]
    parts = []
    for start in range(0, max(len(X), 1), CV_PLUS_BATCH_ROWS):
        _, bounds = conformal.predict_interval(
            X[start : start + CV_PLUS_BATCH_ROWS], aggregate_point_predictions=None
        )
        parts.append(np.asarray(bounds, dtype=np.float64)[:, :, 0])
    return np.concatenate(parts) if len(parts) > 1 else parts[0]
