"""Evaluation: splitters, metrics, figures and the per-run report.

Import from here (``from matfuse.evaluate import make_splitter, write_report``); the
submodules are named for what they hold: ``splitters``, ``clustering``, ``metrics``,
``plots`` and ``report``.
"""

from matfuse.evaluate.clustering import Clustering, butina_clusters
from matfuse.evaluate.metrics import (
    HIGHER_IS_BETTER,
    TASK_TYPES,
    classification_metrics,
    error_by_similarity,
    evaluate_targets,
    interval_coverage,
    primary_metric,
    regression_metrics,
)
from matfuse.evaluate.plots import (
    comparison_bar_plot,
    parity_plot,
    residual_vs_similarity_plot,
    roc_plot,
)
from matfuse.evaluate.report import json_safe, safe_filename, write_report
from matfuse.evaluate.splitters import (
    ClusterSplitter,
    PredefinedSplitter,
    PropertyOODSplitter,
    RandomSplitter,
    ScaffoldSplitter,
    Split,
    Splitter,
    list_splitters,
    make_splitter,
    scaffold_overlap,
)

__all__ = [
    "HIGHER_IS_BETTER",
    "TASK_TYPES",
    "ClusterSplitter",
    "Clustering",
    "PredefinedSplitter",
    "PropertyOODSplitter",
    "RandomSplitter",
    "ScaffoldSplitter",
    "Split",
    "Splitter",
    "butina_clusters",
    "classification_metrics",
    "comparison_bar_plot",
    "error_by_similarity",
    "evaluate_targets",
    "interval_coverage",
    "json_safe",
    "list_splitters",
    "make_splitter",
    "parity_plot",
    "primary_metric",
    "regression_metrics",
    "residual_vs_similarity_plot",
    "roc_plot",
    "safe_filename",
    "scaffold_overlap",
    "write_report",
]
