"""Fit a model on a split and write its test report: ``matfuse train``, the demo and the UI."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from matfuse.inputs import check_encoders, similarity_inputs
from matfuse.pipeline import PropertyModel, check_model
from matfuse.progress import stage
from matfuse.workflow.data import SplitData

logger = logging.getLogger(__name__)

__all__ = ["fit_and_report"]


def fit_and_report(
    model: PropertyModel,
    data: SplitData,
    report_dir: Path,
    extra: dict[str, Any] | None = None,
    blocks: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Fit ``model`` on the fit rows of ``data``, then write the test report with plots.

    The one place where "train, predict the held-out rows, report" is spelled out. The
    report holds the trivial baseline beside the model, the split's description and, for
    molecules, error against similarity to the training set. ``blocks``: every row's
    encoder blocks when the caller has them already (the web UI caches them), so they are
    not computed twice.
    """
    from matfuse.evaluate import write_report

    fit_rows = data.fit_rows
    train = data.parsed.subset(fit_rows)
    test = data.parsed.subset(data.test)
    check_model(model.model, model.input_type)
    if not model.end_to_end:
        check_encoders(list(model.encoders), model.input_type)
    # every row encoded once (one "encode" stage per block), then the parts taken from it
    if blocks is None or model.end_to_end:
        blocks = model.blocks(data.parsed)
    model.fit_blocks(_rows(blocks, fit_rows), data.Y[fit_rows], data.target_names)
    stage("report", "test rows", 0, 1)
    res = model.predict_with_uncertainty(_rows(blocks, data.test))
    info: dict[str, Any] = {
        "notes": data.notes,
        "split": {"description": data.description, "counts": data.counts(), **data.split_info},
        "target": data.target_info,
    }
    estimator = getattr(model, "estimator_", None)
    transforms = getattr(estimator, "target_transforms_", None)
    if transforms is not None:  # which loss/transform `auto` chose for each target, and why
        info["target_transforms"] = dict(zip(data.target_names, transforms, strict=True))
    return write_report(
        report_dir,
        target_names=data.target_names,
        task_types=model.task_types_,
        Y_true=data.Y[data.test],
        Y_pred=res["pred"],
        Y_std=res["std"],
        intervals=res["interval"],
        test_smiles=similarity_inputs(test),
        train_smiles=similarity_inputs(train),
        split_name=data.split_name,
        extra={**info, **(extra or {})},
        Y_train=data.Y[fit_rows],
    )


def _rows(blocks: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {name: values[rows] for name, values in blocks.items()}
