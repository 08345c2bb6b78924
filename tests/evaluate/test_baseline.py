"""The trivial baseline (training median / prior rate) and its place in the report."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from matfuse.evaluate.baseline import (
    baseline_constants,
    baseline_predictions,
    compare_to_baseline,
    evaluate_baseline,
)
from matfuse.evaluate.metrics import evaluate_targets
from matfuse.evaluate.report import write_report

TASKS = ["regression", "classification"]
NAMES = ["y", "active"]


@pytest.fixture
def labels():
    rng = np.random.default_rng(0)
    y_train = rng.lognormal(size=200)
    c_train = (rng.uniform(size=200) < 0.25).astype(float)
    y_train[:7] = np.nan  # missing labels must be ignored, not propagated
    c_train[7:11] = np.nan
    y_test = rng.lognormal(size=80)
    c_test = (rng.uniform(size=80) < 0.25).astype(float)
    return np.column_stack([y_train, c_train]), np.column_stack([y_test, c_test])


def test_constants_ignore_nan_and_use_median_and_prior(labels):
    Y_train, _ = labels
    reg, cls = baseline_constants(Y_train, TASKS)
    finite = Y_train[np.isfinite(Y_train[:, 0]), 0]
    assert reg == {
        "n_train": 193,
        "median": np.median(finite),
        "mean": pytest.approx(finite.mean()),
    }
    positives = np.nansum(Y_train[:, 1])
    assert cls["n_train"] == 196
    assert cls["prior"] == pytest.approx(positives / 196)


def test_prior_rate_metrics_are_exact(labels):
    Y_train, Y_test = labels
    out = evaluate_baseline(Y_train, Y_test, TASKS, NAMES)
    m = out["metrics"]["targets"]["active"]
    prior = out["constants"]["active"]["prior"]
    t = Y_test[:, 1]
    assert m["roc_auc"] == 0.5
    assert m["pr_auc"] == pytest.approx(t.mean())  # average precision of a constant = prevalence
    expected_ll = -np.mean(t * np.log(prior) + (1 - t) * np.log(1 - prior))
    assert m["log_loss"] == pytest.approx(expected_ll)
    assert m["brier"] == pytest.approx(np.mean((prior - t) ** 2))


def test_median_and_mean_baselines_are_the_constants(labels):
    Y_train, Y_test = labels
    out = evaluate_baseline(Y_train, Y_test, TASKS, NAMES)
    median = out["constants"]["y"]["median"]
    mean = out["constants"]["y"]["mean"]
    assert out["metrics"]["targets"]["y"]["mae"] == pytest.approx(
        np.mean(np.abs(Y_test[:, 0] - median))
    )
    assert out["training_mean"]["targets"]["y"]["rmse"] == pytest.approx(
        np.sqrt(np.mean((Y_test[:, 0] - mean) ** 2))
    )
    # a skewed target: the median is the better constant for MAE, the mean for RMSE
    mae_median = out["metrics"]["targets"]["y"]["mae"]
    assert mae_median < out["training_mean"]["targets"]["y"]["mae"]


def test_predictions_shape_and_statistic(labels):
    Y_train, _ = labels
    pred = baseline_predictions(Y_train, 5, TASKS, "mean")
    assert pred.shape == (5, 2) and np.all(pred == pred[0])
    assert pred[0, 0] == pytest.approx(np.nanmean(Y_train[:, 0]))
    with pytest.raises(ValueError, match="statistic"):
        baseline_predictions(Y_train, 5, TASKS, "mode")


def test_constant_model_does_not_beat_and_perfect_model_does(labels):
    Y_train, Y_test = labels
    base = evaluate_baseline(Y_train, Y_test, TASKS, NAMES)
    constant = baseline_predictions(Y_train, len(Y_test), TASKS)
    cmp = compare_to_baseline(evaluate_targets(Y_test, constant, TASKS, NAMES), base)
    assert cmp["y"]["beats_baseline"] is False and cmp["y"]["ratio"] == pytest.approx(1.0)
    assert cmp["active"]["beats_baseline"] is False  # ROC-AUC 0.5 is not better than 0.5
    perfect = evaluate_targets(Y_test, Y_test, TASKS, NAMES)
    cmp = compare_to_baseline(perfect, base)
    assert cmp["y"]["model"] == 0.0 and cmp["y"]["beats_baseline"] is True
    assert cmp["y"]["metric"] == "mae" and cmp["y"]["baseline_kind"] == "training median"
    assert cmp["active"]["beats_baseline"] is True and cmp["active"]["metric"] == "roc_auc"


def test_rmse_comparison_uses_the_mean(labels):
    Y_train, Y_test = labels
    base = evaluate_baseline(Y_train, Y_test, TASKS, NAMES)
    mean_pred = baseline_predictions(Y_train, len(Y_test), TASKS, "mean")
    cmp = compare_to_baseline(
        evaluate_targets(Y_test, mean_pred, TASKS, NAMES), base, primary={"regression": "rmse"}
    )
    assert cmp["y"]["baseline_kind"] == "training mean"
    assert cmp["y"]["beats_baseline"] is False


def test_target_without_training_labels_is_undefined():
    Y_train = np.array([[np.nan], [np.nan]])
    out = evaluate_baseline(Y_train, np.array([[1.0], [2.0]]), ["regression"], ["y"])
    assert math.isnan(out["metrics"]["targets"]["y"]["mae"])
    cmp = compare_to_baseline(out["metrics"], out)
    assert cmp["y"]["beats_baseline"] is None


def test_report_has_baseline_section(tmp_path, labels):
    Y_train, Y_test = labels
    rng = np.random.default_rng(3)
    pred = np.column_stack([Y_test[:, 0] + rng.normal(0, 0.05, len(Y_test)), Y_test[:, 1] * 0.8])
    report = write_report(
        tmp_path / "r",
        target_names=NAMES,
        task_types=TASKS,
        Y_true=Y_test,
        Y_pred=pred,
        Y_train=Y_train,
    )
    on_disk = json.loads((tmp_path / "r" / "report.json").read_text())
    assert on_disk == report
    base = report["baseline"]
    assert set(base) == {"description", "constants", "metrics", "training_mean", "comparison"}
    assert base["metrics"]["targets"]["active"]["roc_auc"] == 0.5
    assert base["comparison"]["y"]["beats_baseline"] is True
    assert base["comparison"]["active"]["beats_baseline"] is True
    assert base["comparison"]["y"]["model"] == report["metrics"]["targets"]["y"]["mae"]
    assert report["counts"]["train"] == len(Y_train)


def test_report_without_training_labels_has_no_baseline(tmp_path, labels):
    _, Y_test = labels
    report = write_report(
        tmp_path / "r", target_names=NAMES, task_types=TASKS, Y_true=Y_test, Y_pred=Y_test
    )
    assert report["baseline"] is None and report["counts"]["train"] is None


def test_report_rejects_mismatched_training_labels(tmp_path, labels):
    _, Y_test = labels
    with pytest.raises(ValueError, match="Y_train"):
        write_report(
            tmp_path / "r",
            target_names=NAMES,
            task_types=TASKS,
            Y_true=Y_test,
            Y_pred=Y_test,
            Y_train=np.zeros((4, 3)),
        )
