"""Typed results of the workflow steps; each serialises to the JSON the reports hold.

Dataclasses instead of nested dicts, so that the CLI, the UI, the API and the benchmark
scripts read the same named fields and a misspelt key is an ``AttributeError``, not a silent
``None``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from matfuse.evaluate.baseline import baseline_source
from matfuse.evaluate.metrics import primary_metric

__all__ = ["Comparison", "CrossValidation", "FoldResult", "RepresentationResult"]


@dataclass
class RepresentationResult:
    """One representation (an encoder alone, or a fused set) fitted and scored on a split."""

    encoders: list[str]
    metrics: dict[str, Any]
    fit_seconds: float
    task_types: list[str]

    def headline(self, metric: str | None = None) -> float:
        """The mean of the primary metric (or ``metric``) over targets."""
        kind = self.task_types[0]
        key = metric or primary_metric(kind)[0]
        return float(self.metrics["mean"][kind][key])


@dataclass
class Comparison:
    """Every representation on the same split, beside the trivial baseline."""

    split: str
    n_train: int
    n_valid: int
    n_test: int
    targets: list[str]
    model: str
    notes: dict[str, Any]
    representations: dict[str, RepresentationResult]
    baseline: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def headline(self, metric: str | None = None) -> dict[str, float]:
        """One number per representation: the mean of the primary metric over targets."""
        return {name: rep.headline(metric) for name, rep in self.representations.items()}

    def baseline_headline(self, metric: str | None = None) -> float:
        """The trivial baseline's value of the same headline metric."""
        first = next(iter(self.representations.values()))
        kind = first.task_types[0]
        key = metric or primary_metric(kind)[0]
        try:
            return float(self.baseline[baseline_source(kind, key)]["mean"][kind][key])
        except (KeyError, TypeError):
            return math.nan


@dataclass
class FoldResult:
    """One fold of a cross-validation: its test metrics and the baseline's."""

    fold: int
    n_train: int
    n_test: int
    metrics: dict[str, Any]
    baseline: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class CrossValidation:
    """k folds of one representation and model; ``summary`` gives mean ± std per metric."""

    split: str
    encoders: list[str]
    model: str
    targets: list[str]
    task_types: list[str]
    folds: list[FoldResult]

    def values(self, metric: str, target: str | None = None, baseline: bool = False) -> np.ndarray:
        """The per-fold values of ``metric`` for ``target`` (default: the first target)."""
        name = target or self.targets[0]
        out = []
        for f in self.folds:
            block = f.baseline["metrics"] if baseline else f.metrics
            out.append(float(block["targets"][name].get(metric, math.nan)))
        return np.asarray(out, dtype=float)

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """``{target: {metric: {"mean", "std", "baseline_mean"}}}`` over folds."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        for name in self.targets:
            first = self.folds[0].metrics["targets"][name]
            metrics = [k for k, v in first.items() if isinstance(v, int | float) and k != "n"]
            out[name] = {}
            for m in metrics:
                vals = self.values(m, name)
                base = self.values(m, name, baseline=True)
                out[name][m] = {
                    "mean": _nan_mean(vals),
                    "std": float(np.nanstd(vals)) if np.isfinite(vals).any() else math.nan,
                    "baseline_mean": _nan_mean(base),
                }
        return out

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary()}


def _nan_mean(values: np.ndarray) -> float:
    """Mean over the finite folds; NaN, without a warning, when no fold has the metric.

    A constant baseline has no rank correlation, and a one-fold split no spread: those are
    undefined, not errors.
    """
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else math.nan
