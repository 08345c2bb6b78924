"""Fit a model on a split and write its test report: ``matfuse train``, the demo and the UI."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from matfuse.inputs import similarity_inputs
from matfuse.pipeline import PropertyModel
from matfuse.workflow.data import SplitData

logger = logging.getLogger(__name__)

__all__ = ["fit_and_report"]


def fit_and_report(
    model: PropertyModel, data: SplitData, report_dir: Path, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Fit ``model`` on the fit rows of ``data``, then write the test report with plots.

    The one place where "train, predict the held-out rows, report" is spelled out. The
    report holds the trivial baseline beside the model, the split's description and, for
    molecules, error against similarity to the training set.
    """
    from matfuse.evaluate import write_report

    fit_rows = data.fit_rows
    train = data.parsed.subset(fit_rows)
    model.fit(train, data.Y[fit_rows], data.target_names)
    test = data.parsed.subset(data.test)
    res = model.predict_with_uncertainty(model.blocks(test))
    info: dict[str, Any] = {
        "notes": data.notes,
        "split": {"description": data.description, **data.split_info},
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
