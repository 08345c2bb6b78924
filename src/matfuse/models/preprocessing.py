"""NaN-tolerant preprocessing shared by every non-booster model.

Fused feature matrices contain NaN in two shapes: whole blocks (a molecule an encoder could not
featurise) and scattered cells (a descriptor that failed). Tree boosters route NaN natively, but
kernels, linear models and sklearn forests either reject NaN or need scaled inputs, so they are
wrapped in the pipeline built here. Keeping it in one place guarantees that every model sees the
same imputation and that a change (say, a different imputation strategy) applies everywhere.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_selection import VarianceThreshold
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["ScaleByDimension", "nan_safe_pipeline"]


class ScaleByDimension(TransformerMixin, BaseEstimator):
    """Divide (already standardised) features by ``sqrt(n_features)``.

    Why: an isotropic RBF kernel on standardised data sees squared distances of about
    ``2 * n_features``. With thousands of fingerprint bits the kernel is then numerically the
    identity at any length scale a kernel optimiser would start from, and the marginal-likelihood
    gradient vanishes. After this rescaling typical squared distances are about 2 whatever the
    width of the fused matrix, so a unit initial length scale is a sensible starting point.
    """

    def fit(self, X: ArrayLike, y: ArrayLike | None = None) -> ScaleByDimension:
        """Record the input width; ``y`` is ignored (present for pipeline compatibility)."""
        X_arr = validate_data(self, X, reset=True, dtype=np.float64)
        self.scale_ = 1.0 / np.sqrt(max(X_arr.shape[1], 1))
        return self

    def transform(self, X: ArrayLike) -> NDArray[np.float64]:
        """Return ``X / sqrt(n_features)``."""
        check_is_fitted(self, "scale_")
        X_arr = validate_data(self, X, reset=False, dtype=np.float64)
        return X_arr * self.scale_


def nan_safe_pipeline(
    model: BaseEstimator, *, scale: bool, per_dimension: bool = False
) -> Pipeline:
    """Wrap ``model`` so that it accepts NaN in X.

    Steps: median imputation (robust to descriptor outliers, and for binary fingerprint bits it
    imputes the majority bit), a zero-variance filter (constant columns, common in sparse
    fingerprints and in blocks imputed from all-NaN training columns, carry no information but
    break scaling and inflate kernel dimension), then optional standardisation and
    :class:`ScaleByDimension`. Columns that are entirely NaN during ``fit`` are dropped by the
    imputer, consistently at predict time.
    """
    steps: list[tuple[str, BaseEstimator]] = [
        ("impute", SimpleImputer(strategy="median")),
        ("drop_constant", VarianceThreshold(threshold=0.0)),
    ]
    if scale:
        steps.append(("scale", StandardScaler()))
    if per_dimension:
        steps.append(("per_dimension", ScaleByDimension()))
    steps.append(("model", model))
    return Pipeline(steps)
