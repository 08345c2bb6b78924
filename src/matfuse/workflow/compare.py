"""Compare representations on one split: each encoder alone and the fused set, same rows.

Features are computed once per encoder for all rows and reused by every model, which is
what makes a side-by-side comparison affordable on a laptop. Every comparison carries the
trivial baseline (training median / prior rate) computed on the same test rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from matfuse.evaluate import HIGHER_IS_BETTER, evaluate_targets, primary_metric
from matfuse.evaluate.baseline import evaluate_baseline
from matfuse.fusion.late import compute_blocks
from matfuse.inputs import check_encoders, default_encoders
from matfuse.pipeline import PropertyModel
from matfuse.workflow.data import SplitData
from matfuse.workflow.results import Comparison, RepresentationResult

logger = logging.getLogger(__name__)

__all__ = ["FUSED", "compare_representations", "comparison_frame", "encode_all"]

FUSED = "fused"


def encode_all(
    parsed: Any, encoders: Sequence[str], progress: bool = True
) -> dict[str, np.ndarray]:
    """Compute every encoder's block for all rows once."""
    out: dict[str, np.ndarray] = {}
    for name in tqdm(list(encoders), desc="encoders", disable=not progress):
        out[name] = compute_blocks([name], parsed)[name].values
    return out


def compare_representations(
    data: SplitData,
    encoders: Sequence[str] | None = None,
    model: str = "auto",
    fused_sets: dict[str, Sequence[str]] | None = None,
    blocks: dict[str, np.ndarray] | None = None,
    model_params: dict[str, Any] | None = None,
    random_state: int = 0,
    progress: bool = True,
    include_single: bool = True,
    uncertainty: str = "none",
    n_jobs: int = 1,
) -> Comparison:
    """Fit each encoder alone and each fused set on the same split; score on the test rows.

    Uncertainty is off by default: conformal calibration refits the model several times and
    the comparison only needs point predictions.
    """
    encoders = list(encoders or default_encoders(data.input_type))
    check_encoders(encoders, data.input_type)
    if fused_sets is None:
        fused_sets = {FUSED: encoders} if len(encoders) > 1 else {}
    needed = sorted(set(encoders) | {e for s in fused_sets.values() for e in s})
    if blocks is None:
        blocks = encode_all(data.parsed, needed, progress=progress)
    runs = {name: [name] for name in encoders} if include_single else {}
    runs |= {k: list(v) for k, v in fused_sets.items()}
    results: dict[str, RepresentationResult] = {}
    fit = data.fit_rows
    task_types: list[str] = []
    for name, members in tqdm(runs.items(), desc="models", disable=not progress):
        start = time.perf_counter()
        pm = PropertyModel(
            encoders=members,
            model=model,
            model_params=model_params,
            uncertainty=uncertainty,
            random_state=random_state,
            n_jobs=n_jobs,
            input_type=data.input_type,
        )
        pm.fit_blocks({e: blocks[e][fit] for e in members}, data.Y[fit], data.target_names)
        pred = pm.predict_blocks({e: blocks[e][data.test] for e in members})
        task_types = list(pm.task_types_)
        results[name] = RepresentationResult(
            encoders=members,
            metrics=evaluate_targets(data.Y[data.test], pred, pm.task_types_, data.target_names),
            fit_seconds=round(time.perf_counter() - start, 2),
            task_types=task_types,
        )
    baseline = (
        evaluate_baseline(data.Y[fit], data.Y[data.test], task_types, data.target_names)
        if task_types
        else {}
    )
    return Comparison(
        split=data.split_name,
        n_train=int(len(data.train)),
        n_valid=int(len(data.valid)),
        n_test=int(len(data.test)),
        targets=data.target_names,
        model=model,
        notes=data.notes,
        representations=results,
        baseline=baseline,
        description=data.description,
    )


def comparison_frame(result: Comparison, metric: str | None = None) -> pd.DataFrame:
    """Representations as rows (best first), the headline metric as a column, and the
    trivial baseline as the last row."""
    scores = result.headline(metric)
    first = next(iter(result.representations.values()))
    kind = first.task_types[0]
    key, higher = primary_metric(kind) if metric is None else (metric, HIGHER_IS_BETTER[metric])
    frame = pd.DataFrame(
        {
            "representation": list(scores),
            "modalities": ["+".join(result.representations[n].encoders) for n in scores],
            key: list(scores.values()),
            "fit_seconds": [result.representations[n].fit_seconds for n in scores],
        }
    )
    frame = frame.sort_values(key, ascending=not higher).reset_index(drop=True)
    if result.baseline:
        row = {
            "representation": "baseline",
            "modalities": _baseline_label(kind, key),
            key: result.baseline_headline(metric),
            "fit_seconds": 0.0,
        }
        frame = pd.concat([frame, pd.DataFrame([row])], ignore_index=True)
    return frame


def _baseline_label(kind: str, metric: str) -> str:
    if kind == "classification":
        return "trivial: training prior rate"
    return "trivial: training median" if metric == "mae" else "trivial: training mean"
