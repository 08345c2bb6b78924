"""The fitted state of one target column and how it is produced.

``PropertyEstimator`` fits one :class:`TargetModel` per column of Y on that column's labelled
rows, so sparse multi-task data (Tox21: 12 assays, most molecules tested on only some) uses every
label without imputing any. Keeping the per-target logic here makes the estimator class a thin
loop and gives persistence a single, explicit list of components to store.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator
from sklearn.dummy import DummyClassifier

from matfuse.models.conformal import (
    conformal_interval,
    conformal_predict,
    fit_conformal,
    resolve_conformal_method,
)
from matfuse.models.registry import make_estimator
from matfuse.models.transforms import TargetTransform
from matfuse.models.uncertainty import fit_ensemble, native_std, point_prediction

__all__ = ["TargetModel", "fit_target_model", "target_scaling"]


def target_scaling(y: NDArray[np.float64]) -> tuple[float, float]:
    """Centre and scale that standardise a regression target.

    Models are fitted on the standardised target because tree boosters judge splits by absolute
    gain: XGBoost ignores any split whose gain is below 1e-6, so a property measured in small
    units (thermal expansion, ~1e-5 per K) trains no trees at all and every prediction is the
    mean. Standardising makes fits independent of the unit the user chose.
    """
    y = np.asarray(y, dtype=np.float64)
    center = float(np.mean(y)) if y.size else 0.0
    scale = float(np.std(y)) if y.size else 1.0
    if not np.isfinite(scale) or scale <= 0.0:
        scale = 1.0
    if not np.isfinite(center):
        center = 0.0
    return center, scale


@dataclass
class TargetModel:
    """Fitted components for one target.

    Exactly one of ``estimator`` (modes ``none``/``native``), ``replicas`` (``ensemble``) or
    ``conformal`` (a fitted MAPIE regressor) holds the model(s); there is no redundant extra fit.
    Regression components see the target as ``(T(y) - y_center) / y_scale``, where ``T`` is
    ``y_transform`` (identity unless the labels are heavy-tailed, see
    :mod:`matfuse.models.transforms`) and the scaling comes from :func:`target_scaling` on
    ``T(y)``; every public method returns values in the original unit. Intervals are mapped
    back bound by bound (exact, ``T`` is monotone); spreads by the delta method for native
    uncertainty and replica by replica for ensembles.
    """

    task: str
    model_name: str
    uncertainty: str
    conformal_method: str | None = None
    estimator: BaseEstimator | None = None
    replicas: list[BaseEstimator] = field(default_factory=list)
    conformal: Any | None = None
    y_center: float = 0.0
    y_scale: float = 1.0
    y_transform: TargetTransform = field(default_factory=TargetTransform)

    def __post_init__(self) -> None:
        # persistence hands over the JSON form (or None for models saved before transforms)
        if not isinstance(self.y_transform, TargetTransform):
            self.y_transform = TargetTransform.from_dict(self.y_transform)

    def _unscale(self, values: NDArray[np.float64], shift: bool = True) -> NDArray[np.float64]:
        # classification targets keep the identity scaling (0, 1), so probabilities pass as is
        return values * self.y_scale + (self.y_center if shift else 0.0)

    def _to_original(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        """Model scale -> original units: undo the standardisation, then the transform."""
        return self.y_transform.inverse(self._unscale(values))

    def _point_on_model_scale(self, X: NDArray[np.float64]) -> NDArray[np.float64]:
        if self.conformal is not None:
            return conformal_predict(self.conformal, X)
        if self.replicas:
            return np.mean([point_prediction(r, X, self.task) for r in self.replicas], axis=0)
        assert self.estimator is not None
        return point_prediction(self.estimator, X, self.task)

    def predict(self, X: NDArray[np.float64]) -> NDArray[np.float64]:
        """Point prediction (regression value or P(class 1)), shape (n,)."""
        return self._to_original(self._point_on_model_scale(X))

    def predict_std(self, X: NDArray[np.float64]) -> NDArray[np.float64]:
        """Native or ensemble spread, shape (n,); NaN when this target has none."""
        if self.uncertainty == "native":
            assert self.estimator is not None
            std = self._unscale(native_std(self.estimator, X, self.task), shift=False)
            if self.y_transform.is_identity:
                return std
            # delta method: the spread on the transformed scale times the local slope
            centre = self._unscale(point_prediction(self.estimator, X, self.task))
            return std * self.y_transform.inverse_derivative(centre)
        if self.uncertainty == "ensemble":
            preds = np.stack([point_prediction(r, X, self.task) for r in self.replicas])
            if self.y_transform.is_identity:
                return self._unscale(preds.std(axis=0, ddof=1), shift=False)
            return self._to_original(preds).std(axis=0, ddof=1)
        return np.full(X.shape[0], np.nan)

    def predict_interval(self, X: NDArray[np.float64]) -> NDArray[np.float64]:
        """Conformal bounds, shape (n, 2); NaN when this target was not conformalised."""
        if self.conformal is not None:
            return self._to_original(conformal_interval(self.conformal, X))
        return np.full((X.shape[0], 2), np.nan)

    def components(self) -> dict[str, Any]:
        """The fitted objects, for persistence."""
        return {
            "estimator": self.estimator,
            "replicas": list(self.replicas),
            "conformal": self.conformal,
        }


def fit_target_model(
    X: NDArray[np.float64],
    y: NDArray[np.float64],
    *,
    task: str,
    model_name: str,
    uncertainty: str,
    model_params: dict[str, Any],
    alpha: float,
    conformal: str,
    conformal_cv: int,
    calibration_size: float,
    ensemble_size: int,
    random_state: int,
    n_jobs: int,
    y_transform: TargetTransform | None = None,
) -> TargetModel:
    """Fit one target on its labelled rows.

    ``model_name`` and ``uncertainty`` must already be resolved (no ``auto``), and so must
    ``y_transform`` (from :func:`~matfuse.models.transforms.choose_target_transform`; ``None``
    is the identity; ignored for classification). A classification target whose labelled rows
    contain a single class cannot train a discriminative model; it gets a constant
    prior-probability model and a warning instead of failing the whole fit.
    """
    n = X.shape[0]

    def build(seed: int) -> BaseEstimator:
        return make_estimator(
            model_name, task, n_samples=n, random_state=seed, n_jobs=n_jobs, **model_params
        )

    if task == "classification":
        y = y.astype(np.int64)
        if np.unique(y).size < 2:
            warnings.warn(
                f"classification target has a single class ({int(y[0])}) among {n} labels; "
                "predicting its prior probability",
                UserWarning,
                stacklevel=3,
            )
            dummy = DummyClassifier(strategy="prior").fit(X, y)
            return TargetModel(task, model_name, "none", estimator=dummy)
        scaling: dict[str, Any] = {}
    else:
        transform = y_transform or TargetTransform()
        y = transform.forward(y)
        center, scale = target_scaling(y)
        y = (y - center) / scale
        scaling = {"y_center": center, "y_scale": scale, "y_transform": transform}

    if uncertainty == "ensemble":
        replicas = fit_ensemble(build, X, y, task, ensemble_size, random_state)
        return TargetModel(task, model_name, uncertainty, replicas=replicas, **scaling)
    if uncertainty == "conformal":
        method = resolve_conformal_method(conformal, n)
        mapie_model = fit_conformal(
            build(random_state),
            X,
            y,
            alpha=alpha,
            method=method,
            cv=conformal_cv,
            calibration_size=calibration_size,
            random_state=random_state,
        )
        return TargetModel(
            task,
            model_name,
            uncertainty,
            conformal_method=method,
            conformal=mapie_model,
            **scaling,
        )
    estimator = build(random_state).fit(X, y)
    return TargetModel(task, model_name, uncertainty, estimator=estimator, **scaling)
