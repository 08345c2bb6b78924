"""k-fold and group k-fold cross-validation with precomputed features.

Each encoder runs once over all rows; every fold refits fusion and model on its training
rows only, so nothing of a fold's test rows leaks into its scaling or PCA.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from matfuse.evaluate import evaluate_targets, make_splitter
from matfuse.evaluate.baseline import evaluate_baseline
from matfuse.evaluate.splitters import splitter_params
from matfuse.inputs import InputTable, check_encoders, default_encoders
from matfuse.pipeline import PropertyModel, check_model
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

    ``folds`` is ``kfold`` (random folds), a group splitter (``spacegroup``, ``element``,
    ``chemsys``; a group k-fold where each fold's test set is whole groups) or any other
    splitter, which gives one fold (``ood``: the tail). ``blocks`` are precomputed encoder
    outputs for all rows (computed here when ``None``). An end-to-end model
    (``crystal-graph``) featurises the rows once itself and ignores ``encoders``.
    """
    kind = table.input_type
    check_model(model, kind)
    template = PropertyModel(model=model, input_type=kind)
    if template.end_to_end:
        encoders = [model]
    else:
        encoders = list(encoders or default_encoders(kind))
        check_encoders(encoders, kind)
    Y = table.target_matrix()
    # n_folds goes wherever the splitter takes it: its constructor (kfold) or its folds()
    # (space group, chemical system); the element splitter makes one fold per element
    # seed likewise, where the splitter has one (a predefined split has none)
    accepted = splitter_params(folds)
    params = dict(split_params)
    for name, value in (("seed", seed), ("n_folds", n_folds)):
        if name in accepted:
            params.setdefault(name, value)
    splitter = make_splitter(folds, **params)
    fold_fn = getattr(splitter, "folds", None)
    if fold_fn is None:  # a single split (e.g. a property tail) is one fold
        splits = [splitter.split(table.parsed, Y)]
    else:
        takes = "n_folds" in inspect.signature(fold_fn).parameters
        splits = fold_fn(table.parsed, Y, **({"n_folds": n_folds} if takes else {}))
    if blocks is None:
        if template.end_to_end:
            blocks = template.blocks(table.parsed)
        else:
            blocks = encode_all(table.parsed, encoders, progress=progress)
    results: list[FoldResult] = []
    task_types: list[str] = []
    for k, split in enumerate(tqdm(splits, desc=f"{folds} folds", disable=not progress)):
        fit = np.concatenate([split.train, split.valid])
        pm = PropertyModel(
            encoders=[] if template.end_to_end else encoders,
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
