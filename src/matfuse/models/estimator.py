"""``PropertyEstimator``: the downstream model of the matfuse pipeline.

One scikit-learn estimator that takes the fused (NaN-bearing) feature matrix and a target matrix
with missing labels, fits one registry model per target column on that column's labelled rows,
and exposes predictions, spreads and conformal intervals in fixed 2-D/3-D shapes so that
evaluation code never has to special-case single-task data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from matfuse.models.conformal import CONFORMAL_METHODS
from matfuse.models.registry import get_spec, resolve_model_name
from matfuse.models.target import TargetModel, fit_target_model
from matfuse.models.tasks import as_feature_matrix, as_target_matrix, infer_task_types
from matfuse.models.threads import limit_native_threads
from matfuse.models.transforms import TARGET_TRANSFORMS, TargetTransform, choose_target_transform
from matfuse.models.tuning import tune
from matfuse.models.uncertainty import UNCERTAINTY_MODES, resolve_uncertainty
from matfuse.progress import stage

__all__ = ["PropertyEstimator"]

#: Fewer labelled rows than this make any model (and CV-based calibration) meaningless.
MIN_LABELLED_ROWS = 5


def _per_model_params(params: dict[str, Any] | None) -> Callable[[str], dict[str, Any]]:
    """The overrides for a resolved model name, from flat or per-model ``model_params``.

    Per-model form: every key a registry name and every value a dict. Mixing the two forms
    is refused rather than guessed at.
    """
    from matfuse.models.registry import list_models

    given = dict(params or {})
    names = {spec.name for spec in list_models()}
    keyed = [k for k in given if k in names]
    if not keyed:
        return lambda name: dict(given)
    if len(keyed) != len(given) or not all(isinstance(given[k], dict) for k in keyed):
        raise ValueError(
            "model_params must be either hyperparameters or {model name: hyperparameters}, "
            f"not a mix: {sorted(given)}"
        )
    return lambda name: dict(given.get(name, {}))


class PropertyEstimator(BaseEstimator):
    """Single- or multi-task property predictor with optional uncertainty.

    Parameters
    ----------
    model:
        Registry name (``xgboost``, ``lightgbm``, ``rf``, ``svr``, ``krr``, ``gp``, ``linear``) or
        ``auto``, which is resolved per target from its labelled-row count (see
        :func:`matfuse.models.registry.resolve_model_name`).
    task:
        ``auto``, ``regression``, ``classification``, or one of those per target column. ``auto``
        treats a column whose labels are all 0/1 as classification.
    uncertainty:
        ``auto``, ``none``, ``native`` (GP std / forest per-tree spread), ``ensemble`` (spread of
        ``ensemble_size`` bootstrap replicas with distinct seeds) or ``conformal`` (MAPIE
        intervals, regression only). ``auto`` = ``native`` for regression with ``gp``/``rf``,
        ``conformal`` for other regression, ``none`` for classification.
    alpha:
        Miscoverage of conformal intervals (0.1 -> 90% intervals).
    model_params:
        Hyperparameter overrides for the core model (see :func:`make_estimator`); they also stay
        fixed during tuning. Keyed by registry name instead (``{"xgboost": {"max_depth": 5}}``),
        each entry applies only to targets whose model resolves to that name, so a default for
        ``auto`` cannot leak XGBoost settings into the random forest it picks on small data.
    random_state:
        Seed for models, folds, bootstraps and tuning.
    n_jobs:
        Threads per model. 1 by default: matfuse often runs on shared machines.
    ensemble_size:
        Number of replicas for ``uncertainty="ensemble"``.
    conformal:
        Calibration scheme: ``auto`` (CV+ up to 5000 labelled rows, split above), ``cv_plus`` or
        ``split``; see :mod:`matfuse.models.conformal`.
    conformal_cv:
        Folds for CV+.
    calibration_size:
        Held-out fraction for split conformal.
    tune_trials:
        Optuna trials per target before the final fit (0 = no tuning, the default, because a
        search multiplies fit time by ``3 * tune_trials``).
    target_transform:
        ``auto`` (default), ``none`` or ``signed-log``: a monotone transform of each regression
        target, fitted on its training labels and undone at prediction (intervals included).
        ``auto`` uses the signed log only for heavy-tailed labels, where squared-error fits
        otherwise chase the outliers and can lose to predicting the median (see
        :mod:`matfuse.models.transforms`); Gaussian-like targets are fitted exactly as before.

    Attributes
    ----------
    task_types_ : list[str]
        Resolved task of each target.
    n_targets_ : int
        Number of target columns.
    n_features_in_ : int
        Width of X seen at fit.
    models_ : list[str]
        Resolved registry model name of each target.
    uncertainty_ : list[str]
        Resolved uncertainty mode of each target.
    conformal_methods_ : list[str | None]
        Calibration scheme of each conformalised target.
    tuned_params_ : list[dict]
        Hyperparameters found by tuning, per target (empty dicts without tuning).
    target_models_ : list[TargetModel]
        The fitted per-target components.
    target_transforms_ : list[dict]
        Per target, the transform used and why (``name``, ``center``, ``scale``,
        ``tail_weight``, ``reason``), JSON-able for reports; ``identity`` for classification.
    """

    def __init__(
        self,
        model: str = "auto",
        task: str | Sequence[str] = "auto",
        uncertainty: str = "auto",
        alpha: float = 0.1,
        model_params: dict[str, Any] | None = None,
        random_state: int = 0,
        n_jobs: int = 1,
        ensemble_size: int = 5,
        conformal: str = "auto",
        conformal_cv: int = 5,
        calibration_size: float = 0.2,
        tune_trials: int = 0,
        target_transform: str = "auto",
    ) -> None:
        self.model = model
        self.task = task
        self.uncertainty = uncertainty
        self.alpha = alpha
        self.model_params = model_params
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.ensemble_size = ensemble_size
        self.conformal = conformal
        self.conformal_cv = conformal_cv
        self.calibration_size = calibration_size
        self.tune_trials = tune_trials
        self.target_transform = target_transform

    def __sklearn_tags__(self) -> Any:
        """Declare NaN tolerance and multi-output targets to sklearn tooling."""
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.target_tags.required = True
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X: ArrayLike, Y: ArrayLike) -> PropertyEstimator:
        """Fit one model per target column on the rows where that label is present.

        Rows whose features are all NaN (a molecule no encoder could featurise) carry no
        information and are dropped from training; they still receive predictions later.
        """
        with limit_native_threads(self.n_jobs):
            return self._fit(X, Y)

    def _fit(self, X: ArrayLike, Y: ArrayLike) -> PropertyEstimator:
        get_spec(self.model)  # fail fast on a typo, before any data handling
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.conformal not in CONFORMAL_METHODS:
            raise ValueError(
                f"conformal must be one of {CONFORMAL_METHODS}, got {self.conformal!r}"
            )
        if self.uncertainty not in UNCERTAINTY_MODES:
            raise ValueError(
                f"uncertainty must be one of {UNCERTAINTY_MODES}, got {self.uncertainty!r}"
            )
        if self.target_transform not in TARGET_TRANSFORMS:
            raise ValueError(
                f"target_transform must be one of {TARGET_TRANSFORMS}, "
                f"got {self.target_transform!r}"
            )
        X_arr = as_feature_matrix(X)
        Y_arr = as_target_matrix(Y, X_arr.shape[0])
        task_types = infer_task_types(Y_arr, self.task)
        informative = ~np.isnan(X_arr).all(axis=1)
        per_model = _per_model_params(self.model_params)

        models: list[str] = []
        modes: list[str] = []
        tuned: list[dict[str, Any]] = []
        fitted: list[TargetModel] = []
        for j, task in enumerate(task_types):
            rows = informative & ~np.isnan(Y_arr[:, j])
            n_rows = int(rows.sum())
            if n_rows < MIN_LABELLED_ROWS:
                raise ValueError(
                    f"target {j} has {n_rows} labelled rows with features; "
                    f"at least {MIN_LABELLED_ROWS} are needed"
                )
            X_j, y_j = X_arr[rows], Y_arr[rows, j]
            name = resolve_model_name(self.model, task, n_rows)
            stage("fit", name, j, len(task_types))
            mode = resolve_uncertainty(self.uncertainty, name, task)
            fixed = per_model(name)
            transform = TargetTransform(reason="classification")
            if task == "regression":
                transform = choose_target_transform(y_j, self.target_transform)
            best: dict[str, Any] = {}
            if self.tune_trials > 0:
                best = tune(
                    name,
                    task,
                    X_j,
                    transform.forward(y_j),  # search on the scale the final fit sees
                    n_trials=self.tune_trials,
                    random_state=self.random_state,
                    n_jobs=self.n_jobs,
                    fixed_params=fixed,
                )
            target_model = fit_target_model(
                X_j,
                y_j,
                task=task,
                model_name=name,
                uncertainty=mode,
                model_params={**best, **fixed},
                alpha=self.alpha,
                conformal=self.conformal,
                conformal_cv=self.conformal_cv,
                calibration_size=self.calibration_size,
                ensemble_size=self.ensemble_size,
                random_state=self.random_state,
                n_jobs=self.n_jobs,
                y_transform=transform,
            )
            models.append(name)
            modes.append(target_model.uncertainty)
            tuned.append(best)
            fitted.append(target_model)

        self.n_features_in_ = X_arr.shape[1]
        self.task_types_ = task_types
        self.n_targets_ = len(task_types)
        self.models_ = models
        self.uncertainty_ = modes
        self.conformal_methods_ = [tm.conformal_method for tm in fitted]
        self.tuned_params_ = tuned
        self.target_models_ = fitted
        return self

    @property
    def target_transforms_(self) -> list[dict[str, Any]]:
        """Per target, the fitted target transform and why it was chosen (see class docs).

        Read from ``target_models_`` so that a loaded model reports the same as a fitted one.
        """
        check_is_fitted(self, "target_models_")
        return [tm.y_transform.to_dict() for tm in self.target_models_]

    def _check_X(self, X: ArrayLike) -> NDArray[np.float64]:
        check_is_fitted(self, "target_models_")
        X_arr = as_feature_matrix(X)
        if X_arr.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X_arr.shape[1]} features, but the estimator was fitted with "
                f"{self.n_features_in_}"
            )
        return X_arr

    def predict(self, X: ArrayLike) -> NDArray[np.float64]:
        """Predictions, shape (n, n_targets): values, or P(class 1) for classification."""
        X_arr = self._check_X(X)
        with limit_native_threads(self.n_jobs):
            return np.column_stack([tm.predict(X_arr) for tm in self.target_models_])

    def predict_std(self, X: ArrayLike) -> NDArray[np.float64] | None:
        """Predictive spread, shape (n, n_targets), NaN for targets without one.

        Returns ``None`` when no target has a spread (uncertainty ``none``/``conformal``), so
        callers can skip std reporting with one check.
        """
        X_arr = self._check_X(X)
        if not any(mode in ("native", "ensemble") for mode in self.uncertainty_):
            return None
        with limit_native_threads(self.n_jobs):
            return np.column_stack([tm.predict_std(X_arr) for tm in self.target_models_])

    def predict_interval(self, X: ArrayLike) -> NDArray[np.float64]:
        """Conformal intervals, shape (n, n_targets, 2) = (lower, upper).

        NaN for classification targets and for targets fitted without ``conformal`` uncertainty
        (check ``uncertainty_``).
        """
        X_arr = self._check_X(X)
        with limit_native_threads(self.n_jobs):
            bounds = [tm.predict_interval(X_arr) for tm in self.target_models_]
        return np.stack(bounds, axis=1)

    def save(self, directory: str | Path, overwrite: bool = False) -> Path:
        """Save with :func:`matfuse.models.persistence.save_estimator` (no pickle)."""
        from matfuse.models.persistence import save_estimator

        return save_estimator(self, Path(directory), overwrite=overwrite)

    @classmethod
    def load(cls, directory: str | Path) -> PropertyEstimator:
        """Load with :func:`matfuse.models.persistence.load_estimator`."""
        from matfuse.models.persistence import load_estimator

        return load_estimator(Path(directory))
