"""Optional Optuna hyperparameter search over the registry models.

The registry defaults are good starting points, but the best depth or kernel width depends on the
data set, and a small TPE search (20 trials x 3-fold CV) usually recovers most of the headroom.
Search spaces are declared as data (:class:`Dimension`) so that user-fixed parameters can be
removed before Optuna ever samples them, and so they are easy to review.

Models whose hyperparameters are already fitted internally are not searched and ``tune`` returns
``{}`` for them: ``gp`` (kernel hyperparameters by marginal likelihood) and ``linear`` (penalty by
internal cross-validation).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from matfuse.models.registry import make_estimator, resolve_model_name
from matfuse.models.target import target_scaling
from matfuse.models.tasks import as_feature_matrix
from matfuse.models.threads import limit_native_threads

__all__ = ["Dimension", "search_space", "tune"]


@dataclass(frozen=True)
class Dimension:
    """One searched hyperparameter: a numeric range, optionally log-scaled or integer."""

    name: str
    low: float
    high: float
    log: bool = False
    integer: bool = False

    def suggest(self, trial: Any) -> float | int:
        """Draw a value from ``trial`` (an ``optuna.Trial``)."""
        if self.integer:
            return int(trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log))
        return float(trial.suggest_float(self.name, self.low, self.high, log=self.log))


def _boosting_common() -> list[Dimension]:
    return [
        Dimension("n_estimators", 100, 1000, log=True, integer=True),
        Dimension("learning_rate", 0.01, 0.3, log=True),
        Dimension("subsample", 0.5, 1.0),
        Dimension("colsample_bytree", 0.1, 1.0),
        Dimension("reg_lambda", 1e-3, 10.0, log=True),
    ]


def _space_xgboost(task: str, n_features: int) -> list[Dimension]:
    return [
        *_boosting_common(),
        Dimension("max_depth", 3, 10, integer=True),
        Dimension("min_child_weight", 0.5, 10.0, log=True),
    ]


def _space_lightgbm(task: str, n_features: int) -> list[Dimension]:
    return [
        *_boosting_common(),
        Dimension("num_leaves", 8, 128, log=True, integer=True),
        Dimension("min_child_samples", 3, 50, log=True, integer=True),
    ]


def _space_rf(task: str, n_features: int) -> list[Dimension]:
    return [
        Dimension("n_estimators", 100, 800, log=True, integer=True),
        Dimension("max_features", 0.02, 1.0, log=True),
        Dimension("min_samples_leaf", 1, 10, integer=True),
    ]


def _gamma(n_features: int) -> Dimension:
    """RBF width around the ``1/d`` default for standardised inputs, two decades each way."""
    d = max(n_features, 1)
    return Dimension("gamma", 0.01 / d, 10.0 / d, log=True)


def _space_svr(task: str, n_features: int) -> list[Dimension]:
    dims = [Dimension("C", 1e-2, 1e3, log=True), _gamma(n_features)]
    if task == "regression":
        dims.append(Dimension("epsilon", 0.01, 0.5, log=True))  # in standardised-y units
    return dims


def _space_krr(task: str, n_features: int) -> list[Dimension]:
    return [Dimension("alpha", 1e-4, 10.0, log=True), _gamma(n_features)]


_SPACES: dict[str, Callable[[str, int], list[Dimension]]] = {
    "xgboost": _space_xgboost,
    "lightgbm": _space_lightgbm,
    "rf": _space_rf,
    "svr": _space_svr,
    "krr": _space_krr,
}


def search_space(model_name: str, task: str, n_features: int) -> list[Dimension]:
    """The dimensions searched for a (resolved) model name; empty if it is not tuned."""
    factory = _SPACES.get(model_name)
    return [] if factory is None else factory(task, n_features)


@contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Silence Optuna's per-trial INFO lines for the duration of a search only."""
    import optuna

    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)


def tune(
    model_name: str,
    task: str,
    X: ArrayLike,
    y: ArrayLike,
    n_trials: int = 20,
    cv: int = 3,
    random_state: int = 0,
    timeout: float | None = None,
    n_jobs: int = 1,
    fixed_params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Search hyperparameters of ``model_name`` with Optuna TPE and return the best ones.

    The objective is the mean ``cv``-fold score: RMSE (minimised, reported as negative) for
    regression, ROC-AUC for classification (threshold-free and robust to class imbalance, which
    is what matters on sparse toxicity assays). Folds are shuffled with ``random_state`` and
    stratified for classification; the sampler is seeded too, so searches are reproducible.
    Rows with a NaN label are ignored. ``fixed_params`` are applied to every trial and excluded
    from the search. Returns only the searched parameters (``{}`` for models that are not tuned).
    """
    import optuna
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

    X_arr = as_feature_matrix(X)
    y_arr = np.asarray(y, dtype=np.float64).reshape(-1)
    if y_arr.shape[0] != X_arr.shape[0]:
        raise ValueError(f"X has {X_arr.shape[0]} rows but y has {y_arr.shape[0]}")
    labelled = ~np.isnan(y_arr)
    X_arr, y_arr = X_arr[labelled], y_arr[labelled]
    if task == "classification":
        y_arr = y_arr.astype(np.int64)
    else:  # search on the unit-free target the final fit sees (see target_scaling)
        center, scale = target_scaling(y_arr)
        y_arr = (y_arr - center) / scale
    name = resolve_model_name(model_name, task, y_arr.shape[0])
    fixed = dict(fixed_params or {})
    dims = [d for d in search_space(name, task, X_arr.shape[1]) if d.name not in fixed]
    if not dims or n_trials <= 0:
        return {}

    if task == "classification":
        splitter: Any = StratifiedKFold(cv, shuffle=True, random_state=random_state)
        scoring = "roc_auc"
    else:
        splitter = KFold(cv, shuffle=True, random_state=random_state)
        scoring = "neg_root_mean_squared_error"
    n_fit = math.ceil(y_arr.shape[0] * (cv - 1) / cv)

    def objective(trial: Any) -> float:
        params = {d.name: d.suggest(trial) for d in dims}
        estimator = make_estimator(
            name,
            task,
            n_samples=n_fit,
            random_state=random_state,
            n_jobs=n_jobs,
            **fixed,
            **params,
        )
        scores = cross_val_score(
            estimator, X_arr, y_arr, cv=splitter, scoring=scoring, error_score="raise"
        )
        return float(np.mean(scores))

    with _quiet_optuna(), limit_native_threads(n_jobs):
        sampler = optuna.samplers.TPESampler(seed=random_state)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.optimize(
            objective, n_trials=n_trials, timeout=timeout, catch=(ValueError, ArithmeticError)
        )
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        raise RuntimeError(f"every tuning trial for {name!r} failed; see the Optuna trial log")
    return dict(study.best_params)
