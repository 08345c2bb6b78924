"""A meta-estimator that caps the number of training rows.

Exact Gaussian processes cost O(n^3) time and O(n^2) memory, so fitting one on a full
10k-molecule data set would stall a pipeline for hours. Rather than refuse, the GP entry of the
registry is wrapped in :class:`SubsampledEstimator`, which fits on a random subset (stratified for
classifiers) and says so with a warning, so that users see the trade-off instead of a hang.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, clone, is_classifier
from sklearn.utils import get_tags, resample
from sklearn.utils.validation import check_is_fitted

__all__ = ["SubsampledEstimator"]


class SubsampledEstimator(BaseEstimator):
    """Fit ``estimator`` on at most ``max_samples`` randomly chosen rows.

    Parameters
    ----------
    estimator:
        The sklearn estimator to wrap (cloned at ``fit``).
    max_samples:
        Row cap. Below it the wrapper is a transparent pass-through.
    random_state:
        Seed of the row subset, so that refits are reproducible.
    """

    def __init__(
        self, estimator: BaseEstimator, max_samples: int = 2000, random_state: int = 0
    ) -> None:
        self.estimator = estimator
        self.max_samples = max_samples
        self.random_state = random_state

    def __sklearn_tags__(self) -> Any:
        """Inherit the estimator type and NaN tolerance of the wrapped model."""
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = inner.classifier_tags
        tags.regressor_tags = inner.regressor_tags
        tags.input_tags.allow_nan = inner.input_tags.allow_nan
        return tags

    def fit(self, X: ArrayLike, y: ArrayLike) -> SubsampledEstimator:
        """Fit a clone of ``estimator`` on a subset of at most ``max_samples`` rows."""
        X_arr = np.asarray(X)
        y_arr = np.asarray(y)
        n = X_arr.shape[0]
        if n > self.max_samples:
            warnings.warn(
                f"{type(self.estimator).__name__} scales as O(n^3); fitting on a random subset of "
                f"{self.max_samples} of {n} rows (raise max_samples to use more).",
                UserWarning,
                stacklevel=2,
            )
            idx = resample(
                np.arange(n),
                replace=False,
                n_samples=self.max_samples,
                random_state=self.random_state,
                stratify=y_arr if is_classifier(self.estimator) else None,
            )
            idx = np.sort(idx)
            X_arr, y_arr = X_arr[idx], y_arr[idx]
        self.estimator_ = clone(self.estimator).fit(X_arr, y_arr)
        self.n_features_in_ = X_arr.shape[1]
        self.n_samples_fit_ = X_arr.shape[0]
        return self

    @property
    def classes_(self) -> NDArray[Any]:
        """Class labels of the wrapped classifier."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.classes_

    def predict(self, X: ArrayLike, **params: Any) -> Any:
        """Delegate to the fitted estimator (``params`` such as ``return_std`` pass through)."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(X, **params)

    def predict_proba(self, X: ArrayLike) -> NDArray[np.float64]:
        """Delegate to the fitted classifier."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(X)
