"""Per-target metrics for multi-task regression and binary classification.

MoleculeNet-style data sets have sparse label matrices (Tox21: ~17% missing), so every
metric here is computed on the rows where *both* the label and the prediction are
finite, and reports how many rows that was (``n``). Undefined metrics (a single class,
a constant target, no rows) are NaN with a ``note`` saying why, instead of an exception:
one degenerate target must not abort the evaluation of the other eleven.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "CLASSIFICATION_METRICS",
    "HIGHER_IS_BETTER",
    "REGRESSION_METRICS",
    "TASK_TYPES",
    "classification_metrics",
    "error_by_similarity",
    "evaluate_targets",
    "interval_coverage",
    "primary_metric",
    "regression_metrics",
]

TASK_TYPES = ("regression", "classification")
REGRESSION_METRICS = ("rmse", "mae", "r2", "spearman")
CLASSIFICATION_METRICS = ("roc_auc", "pr_auc", "accuracy", "log_loss", "brier")
#: Direction of every metric this module reports, for model selection and plots.
HIGHER_IS_BETTER: dict[str, bool] = {
    "rmse": False,
    "mae": False,
    "r2": True,
    "spearman": True,
    "roc_auc": True,
    "pr_auc": True,
    "accuracy": True,
    "log_loss": False,
    "brier": False,
}
#: Probabilities are clipped to [eps, 1 - eps] for the log-loss, so one confident miss costs
#: log(1/eps) ≈ 34.5 nats instead of infinity (which would make the report's mean meaningless).
_LOG_LOSS_EPS = 1e-15
#: MoleculeNet's recommended metric where it differs from the task-type default.
_DATASET_PRIMARY = {"qm7": "mae", "qm8": "mae", "qm9": "mae"}
#: Counts are reported per target but averaging them across targets means nothing.
_NOT_AVERAGED = {"n", "n_positive"}


def _pairs(*arrays: Any) -> tuple[np.ndarray, ...]:
    """1-D float copies restricted to rows where every array is finite."""
    arrs = [np.asarray(a, dtype=np.float64).ravel() for a in arrays]
    lengths = {a.size for a in arrs}
    if len(lengths) > 1:
        raise ValueError(f"arrays have different lengths: {[a.size for a in arrs]}")
    mask = np.logical_and.reduce([np.isfinite(a) for a in arrs])
    return tuple(a[mask] for a in arrs)


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, Any]:
    """RMSE, MAE, R² and Spearman ρ on finite (label, prediction) pairs, plus ``n``."""
    t, p = _pairs(y_true, y_pred)
    out: dict[str, Any] = {m: float("nan") for m in REGRESSION_METRICS}
    out["n"] = int(t.size)
    if t.size == 0:
        out["note"] = "no rows with both a finite label and a finite prediction"
        return out
    err = p - t
    out["rmse"] = float(np.sqrt(np.mean(err**2)))
    out["mae"] = float(np.mean(np.abs(err)))
    if t.size < 2 or np.ptp(t) == 0:
        # sklearn would return a made-up 0.0/1.0 here; NaN says "undefined" honestly.
        out["note"] = "r2 and spearman undefined: fewer than 2 rows or constant labels"
        return out
    from sklearn.metrics import r2_score  # lazy: keeps `import matfuse.evaluate` fast

    out["r2"] = float(r2_score(t, p))
    if np.ptp(p) == 0:
        out["note"] = "spearman undefined: constant predictions"
    else:
        from scipy.stats import spearmanr  # lazy, as above

        out["spearman"] = float(spearmanr(t, p).statistic)
    return out


def classification_metrics(y_true: Any, y_score: Any) -> dict[str, Any]:
    """ROC-AUC, PR-AUC (average precision), accuracy at 0.5, log-loss, Brier, ``n``, ``n_positive``.

    ``y_score`` should be the probability of class 1 (accuracy, log-loss and Brier read it
    as one; the AUCs only need a monotone score). PR-AUC is sklearn's average precision, the
    step-wise estimate that does not over-credit the interpolated PR curve. Log-loss and
    Brier score are what separate a calibrated model from the constant prior rate, which
    has ROC-AUC 0.5 but a log-loss no model should exceed; they are NaN when the scores are
    not probabilities (outside [0, 1]).
    """
    t, s = _pairs(y_true, y_score)
    if not np.isin(t, (0.0, 1.0)).all():
        bad = np.unique(t[~np.isin(t, (0.0, 1.0))])[:5]
        raise ValueError(f"classification labels must be 0/1, found {bad.tolist()}")
    out: dict[str, Any] = {m: float("nan") for m in CLASSIFICATION_METRICS}
    out["n"] = int(t.size)
    out["n_positive"] = int(t.sum())
    if t.size == 0:
        out["note"] = "no rows with both a finite label and a finite score"
        return out
    out["accuracy"] = float(np.mean((s >= 0.5) == (t == 1.0)))
    if s.min() >= 0.0 and s.max() <= 1.0:
        p = np.clip(s, _LOG_LOSS_EPS, 1.0 - _LOG_LOSS_EPS)
        out["log_loss"] = float(-np.mean(t * np.log(p) + (1.0 - t) * np.log1p(-p)))
        out["brier"] = float(np.mean((s - t) ** 2))
    if out["n_positive"] in (0, t.size):
        only = int(t[0])
        out["note"] = f"only one class present (all {only}): roc_auc and pr_auc undefined"
        return out
    from sklearn.metrics import average_precision_score, roc_auc_score  # lazy

    out["roc_auc"] = float(roc_auc_score(t, s))
    out["pr_auc"] = float(average_precision_score(t, s))
    return out


def interval_coverage(y_true: Any, lower: Any, upper: Any) -> dict[str, Any]:
    """Empirical coverage of prediction intervals and their mean width.

    Compare ``coverage`` with the nominal level (e.g. 0.9): far below means the
    uncertainty is over-confident, far above with wide intervals means it is useless.
    """
    t, lo, hi = _pairs(y_true, lower, upper)
    if t.size == 0:
        return {"coverage": float("nan"), "mean_width": float("nan"), "n": 0}
    return {
        "coverage": float(np.mean((t >= lo) & (t <= hi))),
        "mean_width": float(np.mean(hi - lo)),
        "n": int(t.size),
    }


def error_by_similarity(
    abs_error: Any, similarity: Any, n_bins: int = 10
) -> list[dict[str, float | int]]:
    """Mean absolute error per equal-width similarity bin on [0, 1].

    The numbers behind the residual-vs-similarity plot: if error falls as similarity to
    the training set rises, the model interpolates but does not transfer. Fixed bin
    edges keep reports comparable across splits; empty bins are omitted.
    """
    err, sim = _pairs(np.abs(np.asarray(abs_error, dtype=np.float64)), similarity)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(sim, edges[1:-1]), 0, n_bins - 1)
    out: list[dict[str, float | int]] = []
    for b in range(n_bins):
        sel = which == b
        if sel.any():
            out.append(
                {
                    "lo": float(edges[b]),
                    "hi": float(edges[b + 1]),
                    "n": int(sel.sum()),
                    "mean_abs_error": float(err[sel].mean()),
                }
            )
    return out


def _as_2d(a: Any, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be (n,) or (n, t), got shape {arr.shape}")
    return arr


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if isinstance(v, int | float) and math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def evaluate_targets(
    Y_true: Any,
    Y_pred: Any,
    task_types: Sequence[str],
    target_names: Sequence[str],
    intervals: Any = None,
) -> dict[str, Any]:
    """Metrics per target and their mean over targets of the same task type.

    Args:
        Y_true: labels (n, t) with NaN for missing labels.
        Y_pred: predictions (n, t); probabilities of class 1 for classification targets.
        task_types: ``"regression"`` or ``"classification"`` per target.
        target_names: unique name per target (the keys of the result).
        intervals: optional (n, t, 2) lower/upper prediction bounds; adds ``coverage``
            and ``mean_width`` to regression targets.

    Returns:
        ``{"targets": {name: {"task_type": ..., metric: value, ...}},
        "mean": {task_type: {metric: mean over targets, "n_targets": k}}}``. Means
        ignore targets where the metric is NaN.
    """
    yt = _as_2d(Y_true, "Y_true")
    yp = _as_2d(Y_pred, "Y_pred")
    n_targets = yt.shape[1]
    if yp.shape != yt.shape:
        raise ValueError(f"Y_pred shape {yp.shape} != Y_true shape {yt.shape}")
    if len(task_types) != n_targets or len(target_names) != n_targets:
        raise ValueError(
            f"{n_targets} targets but {len(task_types)} task types and {len(target_names)} names"
        )
    if len(set(target_names)) != n_targets:
        raise ValueError(f"target names must be unique, got {list(target_names)}")
    bounds = None
    if intervals is not None:
        bounds = np.asarray(intervals, dtype=np.float64)
        if bounds.ndim == 2 and n_targets == 1:
            bounds = bounds[:, None, :]
        if bounds.shape != (*yt.shape, 2):
            raise ValueError(f"intervals must have shape {(*yt.shape, 2)}, got {bounds.shape}")

    targets: dict[str, dict[str, Any]] = {}
    for j, (name, task) in enumerate(zip(target_names, task_types, strict=True)):
        if task == "regression":
            m = regression_metrics(yt[:, j], yp[:, j])
            if bounds is not None:
                cov = interval_coverage(yt[:, j], bounds[:, j, 0], bounds[:, j, 1])
                m.update(coverage=cov["coverage"], mean_width=cov["mean_width"])
        elif task == "classification":
            m = classification_metrics(yt[:, j], yp[:, j])
        else:
            raise ValueError(f"unknown task type {task!r}; expected one of {TASK_TYPES}")
        targets[str(name)] = {"task_type": task, **m}

    mean: dict[str, dict[str, Any]] = {}
    for task in TASK_TYPES:
        rows = [m for m in targets.values() if m["task_type"] == task]
        if not rows:
            continue
        keys = list(
            dict.fromkeys(
                k
                for r in rows
                for k, v in r.items()
                if k not in _NOT_AVERAGED and isinstance(v, float)
            )
        )
        block: dict[str, Any] = {k: _nanmean([r.get(k, float("nan")) for r in rows]) for k in keys}
        block["n_targets"] = len(rows)
        mean[task] = block
    return {"targets": targets, "mean": mean}


def primary_metric(
    task_type: str, override: str | None = None, dataset: str | None = None
) -> tuple[str, bool]:
    """The metric to select and report models by, and whether higher is better.

    MoleculeNet conventions: ROC-AUC for classification, RMSE for regression, except
    MAE for the quantum-chemistry sets (``dataset`` in qm7/qm8/qm9). ``override`` wins
    over both but must be a metric of this task type.
    """
    if task_type not in TASK_TYPES:
        raise ValueError(f"unknown task type {task_type!r}; expected one of {TASK_TYPES}")
    allowed = REGRESSION_METRICS if task_type == "regression" else CLASSIFICATION_METRICS
    if override is not None:
        name = override.strip().lower()
        if name not in allowed:
            raise ValueError(f"{override!r} is not a {task_type} metric; choose from {allowed}")
    elif task_type == "regression":
        name = _DATASET_PRIMARY.get((dataset or "").strip().lower(), "rmse")
    else:
        name = "roc_auc"
    return name, HIGHER_IS_BETTER[name]
