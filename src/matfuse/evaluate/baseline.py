"""The trivial baseline every report is measured against: a constant learned from training labels.

A test MAE means little on its own: 0.3 eV is excellent for one target and worthless for
another. The number that gives it meaning is what a model that ignores its inputs achieves.
Per target that is

* regression: the **training median** (the constant that minimises MAE; the primary
  baseline). The training mean (the constant that minimises RMSE) is reported as well and is
  the reference for RMSE and R²;
* classification: the **training prior rate**, the positive-class frequency as a constant
  probability: ROC-AUC 0.5, PR-AUC equal to the test prevalence, and the log-loss/Brier score
  any calibrated model must beat.

Baseline and model metrics both come from :func:`matfuse.evaluate.metrics.evaluate_targets`,
so a difference between them is never a difference of metric code.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from matfuse.evaluate.metrics import HIGHER_IS_BETTER, evaluate_targets, primary_metric

__all__ = [
    "BASELINE_PRIMARY_METRIC",
    "baseline_constants",
    "baseline_predictions",
    "baseline_source",
    "compare_to_baseline",
    "evaluate_baseline",
]

logger = logging.getLogger(__name__)

#: The metric on which "beats the baseline" is decided, per task type. MAE, not RMSE, for
#: regression: materials benchmarks (Matbench, CrabNet) rank by MAE and its optimal constant,
#: the median, is the baseline a user can most easily reproduce.
BASELINE_PRIMARY_METRIC: dict[str, str] = {"regression": "mae", "classification": "roc_auc"}
#: What the primary baseline predicts, in words, for reports and tables.
BASELINE_DESCRIPTION: dict[str, str] = {
    "regression": "training median (constant)",
    "classification": "training prior rate (constant probability)",
}


def _as_2d(a: Any, name: str) -> NDArray[np.float64]:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be (n,) or (n, t), got shape {arr.shape}")
    return arr


def baseline_constants(Y_train: Any, task_types: Sequence[str]) -> list[dict[str, float | int]]:
    """Per target: ``n_train`` (finite labels) and the constants the baselines predict.

    Regression targets get ``median`` and ``mean``; classification targets ``prior`` (the
    fraction of positive labels, which is also their mean). NaN labels are ignored; a target
    without a single training label gets NaN constants (and NaN baseline metrics).
    """
    Y = _as_2d(Y_train, "Y_train")
    if Y.shape[1] != len(task_types):
        raise ValueError(f"Y_train has {Y.shape[1]} columns for {len(task_types)} task types")
    out: list[dict[str, float | int]] = []
    for j, task in enumerate(task_types):
        y = Y[np.isfinite(Y[:, j]), j]
        empty = y.size == 0
        if task == "classification":
            out.append({"n_train": int(y.size), "prior": math.nan if empty else float(y.mean())})
        elif task == "regression":
            out.append(
                {
                    "n_train": int(y.size),
                    "median": math.nan if empty else float(np.median(y)),
                    "mean": math.nan if empty else float(y.mean()),
                }
            )
        else:
            raise ValueError(f"unknown task type {task!r}")
    return out


def baseline_predictions(
    Y_train: Any, n_test: int, task_types: Sequence[str], statistic: str = "median"
) -> NDArray[np.float64]:
    """Constant predictions, shape ``(n_test, t)``, of the trivial baseline.

    ``statistic`` is ``"median"`` (the primary baseline) or ``"mean"`` for regression
    targets; classification targets always get their prior rate.
    """
    if statistic not in ("median", "mean"):
        raise ValueError(f"statistic must be 'median' or 'mean', got {statistic!r}")
    constants = baseline_constants(Y_train, task_types)
    row = [
        c["prior"] if task == "classification" else c[statistic]
        for c, task in zip(constants, task_types, strict=True)
    ]
    return np.tile(np.asarray(row, dtype=np.float64), (int(n_test), 1))


def evaluate_baseline(
    Y_train: Any,
    Y_test: Any,
    task_types: Sequence[str],
    target_names: Sequence[str],
) -> dict[str, Any]:
    """Metrics of the trivial baseline on a test set, from the training labels alone.

    Returns ``{"description", "constants", "metrics", "training_mean"}``: ``metrics`` is the
    :func:`evaluate_targets` output of the primary baseline (median / prior rate), in the same
    layout as a model's, so a table can print it as one more row; ``training_mean`` is the same
    for the training-mean constant (identical to ``metrics`` for classification targets).
    """
    Yt = _as_2d(Y_test, "Y_test")
    names = [str(n) for n in target_names]
    tasks = list(task_types)
    constants = baseline_constants(Y_train, tasks)
    if Yt.shape[1] != len(tasks):
        raise ValueError(f"Y_test has {Yt.shape[1]} columns for {len(tasks)} task types")
    n = Yt.shape[0]
    median = evaluate_targets(Yt, baseline_predictions(Y_train, n, tasks, "median"), tasks, names)
    mean = evaluate_targets(Yt, baseline_predictions(Y_train, n, tasks, "mean"), tasks, names)
    return {
        "description": {t: BASELINE_DESCRIPTION[t] for t in dict.fromkeys(tasks)},
        "constants": dict(zip(names, constants, strict=True)),
        "metrics": median,
        "training_mean": mean,
    }


def baseline_source(task: str, metric: str) -> str:
    """Which section of :func:`evaluate_baseline` a metric is compared with.

    MAE and every classification metric against the primary baseline (median / prior
    rate, section ``metrics``); RMSE, R² and the rest against the training mean (section
    ``training_mean``), the constant that is optimal for them.
    """
    return "metrics" if task == "classification" or metric == "mae" else "training_mean"


def _kind(task: str, source: str) -> str:
    if task == "classification":
        return "training prior rate"
    return "training median" if source == "metrics" else "training mean"


def compare_to_baseline(
    model_metrics: Mapping[str, Any],
    baseline: Mapping[str, Any],
    primary: Mapping[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per target: the primary metric of model and baseline and whether the model beats it.

    ``model_metrics`` is an :func:`evaluate_targets` result, ``baseline`` an
    :func:`evaluate_baseline` result for the same test rows. ``primary`` overrides
    :data:`BASELINE_PRIMARY_METRIC` per task type. MAE is compared with the median baseline,
    every other regression metric with the mean baseline (the constant optimal for it).
    ``beats_baseline`` is strict (a tie does not beat it) and ``None`` when either value is
    undefined; ``ratio`` is model / baseline (below 1 is better for error metrics).
    """
    chosen = {**BASELINE_PRIMARY_METRIC, **(primary or {})}
    out: dict[str, dict[str, Any]] = {}
    for name, m in model_metrics["targets"].items():
        task = m["task_type"]
        metric, higher = primary_metric(task, override=chosen[task])
        source = baseline_source(task, metric)
        b = baseline[source]["targets"][name]
        model_value = float(m.get(metric, math.nan))
        base_value = float(b.get(metric, math.nan))
        defined = math.isfinite(model_value) and math.isfinite(base_value)
        beats: bool | None = None
        if defined:
            beats = model_value > base_value if higher else model_value < base_value
        ratio = model_value / base_value if defined and base_value != 0.0 else math.nan
        out[name] = {
            "metric": metric,
            "higher_is_better": HIGHER_IS_BETTER[metric],
            "model": model_value,
            "baseline": base_value,
            "baseline_kind": _kind(task, source),
            "ratio": ratio,
            "beats_baseline": beats,
        }
        if beats is False:
            logger.warning(
                "target %r: model %s %.4g does not beat the trivial baseline (%.4g)",
                name,
                metric,
                model_value,
                base_value,
            )
    return out
