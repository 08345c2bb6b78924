"""k-fold and group k-fold cross-validation with precomputed features.

Each encoder runs once over all rows; every fold refits fusion and model on its training
rows only, so nothing of a fold's test rows leaks into its scaling or PCA.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from matfuse.evaluate import evaluate_targets, make_splitter
from matfuse.evaluate.baseline import evaluate_baseline
from matfuse.inputs import InputTable, check_encoders, default_encoders
from matfuse.pipeline import PropertyModel
from matfuse.workflow.compare import encode_all
from matfuse.workflow.results import CrossValidation, FoldResult

logger = logging.getLogger(__name__)

__all__ = ["cross_validate"]


def cross_validate(
    table: InputTable,
    encoders: Sequence[str] | None = None,
    model: str = "auto",
    folds: str = "kfold",
    n_folds: int = 5,
    seed: int = 0,
    blocks: dict[str, np.ndarray] | None = None,
    model_params: dict[str, Any] | None = None,
    progress: bool = True,
    **split_params: Any,
) -> CrossValidation:
    """Cross-validate a representation and model on a validated table.

    ``folds`` is ``kfold`` (random folds) or a group splitter (``spacegroup``, ``element``,
    ``chemsys``; a group k-fold where each fold's test set is whole groups). ``blocks`` are
    precomputed encoder outputs for all rows (computed here when ``None``).
    """
    kind = table.input_type
    encoders = list(encoders or default_encoders(kind))
    check_encoders(encoders, kind)
    Y = table.target_matrix()
    params = {"seed": seed, **split_params}
    if folds == "kfold":
        params["n_folds"] = n_folds
    splitter = make_splitter(folds, **params)
    fold_fn = getattr(splitter, "folds", None)
    if fold_fn is None:
        raise ValueError(f"the {folds!r} splitter has no folds; use kfold or a group splitter")
    kwargs = {"n_folds": n_folds} if folds not in ("kfold", "element") else {}
    splits = fold_fn(table.parsed, Y, **kwargs)
    if blocks is None:
        blocks = encode_all(table.parsed, encoders, progress=progress)
    results: list[FoldResult] = []
    task_types: list[str] = []
    for k, split in enumerate(tqdm(splits, desc=f"{folds} folds", disable=not progress)):
        fit = np.concatenate([split.train, split.valid])
        pm = PropertyModel(
            encoders=encoders,
            model=model,
            model_params=model_params,
            uncertainty="none",
            random_state=seed,
            input_type=kind,
        )
        pm.fit_blocks({e: blocks[e][fit] for e in encoders}, Y[fit], table.targets)
        pred = pm.predict_blocks({e: blocks[e][split.test] for e in encoders})
        task_types = list(pm.task_types_)
        results.append(
            FoldResult(
                fold=k,
                n_train=int(fit.size),
                n_test=int(split.test.size),
                metrics=evaluate_targets(Y[split.test], pred, task_types, table.targets),
                baseline=evaluate_baseline(Y[fit], Y[split.test], task_types, table.targets),
                info={k2: v for k2, v in split.info.items() if k2 != "fold"},
            )
        )
    return CrossValidation(
        split=folds,
        encoders=encoders,
        model=model,
        targets=list(table.targets),
        task_types=task_types,
        folds=results,
    )
