"""Metrics against sklearn/scipy reference values, NaN handling and degenerate targets."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import (
    average_precision_score,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
)

from matfuse.evaluate.metrics import (
    classification_metrics,
    error_by_similarity,
    evaluate_targets,
    interval_coverage,
    primary_metric,
    regression_metrics,
)

Y = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.5])
P = np.array([1.2, 1.7, 3.4, 3.9, 5.8, 6.0])
LABELS = np.array([0, 0, 1, 1, 0, 1, 1, 0])
SCORES = np.array([0.1, 0.4, 0.35, 0.8, 0.7, 0.9, 0.55, 0.2])


def test_regression_metrics_match_references():
    m = regression_metrics(Y, P)
    # hand value: squared errors .04 .09 .16 .01 .64 .25 -> mean 0.19833
    assert m["rmse"] == pytest.approx(math.sqrt(1.19 / 6))
    assert m["mae"] == pytest.approx(mean_absolute_error(Y, P))
    assert m["r2"] == pytest.approx(r2_score(Y, P))
    assert m["spearman"] == pytest.approx(stats.spearmanr(Y, P).statistic)
    assert m["n"] == 6 and "note" not in m


def test_regression_ignores_nan_pairs():
    y = np.append(Y, [np.nan, 3.0])
    p = np.append(P, [1.0, np.nan])
    assert regression_metrics(y, p) == regression_metrics(Y, P)


def test_regression_degenerate_cases_are_nan_with_note():
    m = regression_metrics([2.0, 2.0, 2.0], [1.0, 2.0, 3.0])
    assert math.isnan(m["r2"]) and math.isnan(m["spearman"]) and "constant" in m["note"]
    assert m["rmse"] == pytest.approx(math.sqrt(2 / 3))
    empty = regression_metrics([np.nan], [1.0])
    assert empty["n"] == 0 and math.isnan(empty["rmse"]) and "note" in empty


def test_classification_metrics_match_references():
    m = classification_metrics(LABELS, SCORES)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(LABELS, SCORES))
    assert m["pr_auc"] == pytest.approx(average_precision_score(LABELS, SCORES))
    # predictions at 0.5: 0 0 0 1 1 1 1 0 -> 6 of 8 correct
    assert m["accuracy"] == pytest.approx(0.75)
    assert (m["n"], m["n_positive"]) == (8, 4)


def test_single_class_gives_nan_auc_without_exception_or_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = classification_metrics([0, 0, 0, np.nan], [0.2, 0.7, 0.1, 0.9])
    assert math.isnan(m["roc_auc"]) and math.isnan(m["pr_auc"])
    assert "one class" in m["note"]
    assert m["accuracy"] == pytest.approx(2 / 3) and m["n"] == 3


def test_non_binary_labels_are_rejected():
    with pytest.raises(ValueError, match="0/1"):
        classification_metrics([0, 1, 2], [0.1, 0.5, 0.9])


def test_interval_coverage():
    m = interval_coverage([1.0, 2.0, 3.0, np.nan], [0.5, 2.5, 2.0, 0.0], [1.5, 3.0, 3.0, 1.0])
    assert m == {"coverage": pytest.approx(2 / 3), "mean_width": pytest.approx(2.5 / 3), "n": 3}


def test_evaluate_targets_per_target_nan_masks_and_means():
    n = 8
    rng = np.random.default_rng(0)
    y_reg2 = rng.normal(size=n)
    p_reg2 = y_reg2 + rng.normal(scale=0.3, size=n)
    Y_true = np.column_stack([np.append(Y, [np.nan, np.nan]), LABELS, y_reg2]).astype(float)
    Y_pred = np.column_stack([np.append(P, [9.0, 9.0]), SCORES, p_reg2])
    Y_true[0, 1] = np.nan  # a missing label in the classification target
    Y_pred[5, 2] = np.nan  # a missing prediction in the second regression target
    intervals = np.stack([Y_pred - 1.0, Y_pred + 1.0], axis=-1)
    res = evaluate_targets(
        Y_true,
        Y_pred,
        ["regression", "classification", "regression"],
        ["a", "b", "c"],
        intervals=intervals,
    )
    a, b, c = (res["targets"][k] for k in "abc")
    assert a["rmse"] == pytest.approx(regression_metrics(Y, P)["rmse"]) and a["n"] == 6
    assert b["roc_auc"] == pytest.approx(roc_auc_score(LABELS[1:], SCORES[1:])) and b["n"] == 7
    keep = np.arange(n) != 5
    assert c["r2"] == pytest.approx(r2_score(y_reg2[keep], p_reg2[keep])) and c["n"] == 7
    assert a["task_type"] == "regression" and "coverage" in a and "coverage" not in b
    mean = res["mean"]
    assert mean["regression"]["rmse"] == pytest.approx((a["rmse"] + c["rmse"]) / 2)
    assert mean["regression"]["n_targets"] == 2 and "n" not in mean["regression"]
    assert mean["classification"]["roc_auc"] == pytest.approx(b["roc_auc"])


def test_evaluate_targets_mean_skips_undefined_targets():
    Y_true = np.array([[0, 0], [1, 0], [1, 0], [0, 0]], dtype=float)
    Y_pred = np.array([[0.2, 0.1], [0.8, 0.3], [0.6, 0.2], [0.4, 0.9]])
    res = evaluate_targets(Y_true, Y_pred, ["classification"] * 2, ["t1", "t2"])
    assert math.isnan(res["targets"]["t2"]["roc_auc"])
    assert res["mean"]["classification"]["roc_auc"] == pytest.approx(1.0)


def test_evaluate_targets_validates_inputs():
    with pytest.raises(ValueError, match="task type"):
        evaluate_targets(Y[:, None], P[:, None], ["ranking"], ["x"])
    with pytest.raises(ValueError, match="unique"):
        evaluate_targets(np.c_[Y, Y], np.c_[P, P], ["regression"] * 2, ["x", "x"])
    with pytest.raises(ValueError, match="shape"):
        evaluate_targets(Y, P[:3], ["regression"], ["x"])


def test_primary_metric_conventions_and_override():
    assert primary_metric("classification") == ("roc_auc", True)
    assert primary_metric("regression") == ("rmse", False)
    assert primary_metric("regression", dataset="QM9") == ("mae", False)
    assert primary_metric("regression", override="r2", dataset="qm9") == ("r2", True)
    with pytest.raises(ValueError):
        primary_metric("regression", override="roc_auc")
    with pytest.raises(ValueError):
        primary_metric("ranking")


def test_error_by_similarity_bins():
    bins = error_by_similarity([1.0, -3.0, 2.0, np.nan], [0.05, 0.08, 0.95, 0.5], n_bins=10)
    assert [(b["lo"], b["n"], b["mean_abs_error"]) for b in bins] == [
        (0.0, 2, 2.0),
        (pytest.approx(0.9), 1, 2.0),
    ]
    # similarity 1.0 (duplicate of a training molecule) lands in the last bin
    assert error_by_similarity([1.0], [1.0], n_bins=4)[0]["hi"] == 1.0
