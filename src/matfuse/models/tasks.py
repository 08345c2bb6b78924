"""Input coercion and per-target task inference.

Kept apart from the estimator so that the CLI and evaluation code can infer task types the same
way (e.g. to pick metrics) without fitting anything.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from matfuse.models.registry import TASKS

__all__ = ["as_feature_matrix", "as_target_matrix", "infer_task_types"]


def as_feature_matrix(X: ArrayLike) -> NDArray[np.float64]:
    """Return X as a 2-D float64 array with +/-inf replaced by NaN.

    Descriptor calculators emit inf for overflowing values; treating those as missing lets the
    same imputation path handle them instead of crashing the scaler.
    """
    arr = np.array(X, dtype=np.float64)  # a copy: callers' arrays are never modified
    if arr.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {arr.shape}")
    arr[np.isinf(arr)] = np.nan
    return arr


def as_target_matrix(Y: ArrayLike, n_samples: int) -> NDArray[np.float64]:
    """Return Y as a 2-D float64 array (n, t); a 1-D Y becomes one column. NaN = missing label."""
    arr = np.array(Y, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"Y must be 1-D or 2-D, got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise ValueError(f"X has {n_samples} rows but Y has {arr.shape[0]}")
    if np.isinf(arr).any():
        raise ValueError("Y contains inf; use NaN for missing labels")
    return arr


def _is_binary(column: NDArray[np.float64]) -> bool:
    values = column[~np.isnan(column)]
    return values.size > 0 and bool(np.isin(values, (0.0, 1.0)).all())


def infer_task_types(Y: NDArray[np.float64], task: str | Sequence[str] = "auto") -> list[str]:
    """Resolve the task of every target column.

    ``task`` is ``"auto"``, one task name applied to all columns, or one entry per column (each
    ``"auto"``, ``"regression"`` or ``"classification"``). ``auto`` calls a column classification
    when all of its labelled values are in {0, 1}: MoleculeNet/TDC binary endpoints are stored that
    way, whereas a continuous property that only takes the values 0 and 1 is implausible.
    Classification columns must be coded 0/1 (1 = positive class).
    """
    n_targets = Y.shape[1]
    if isinstance(task, str):
        requested = [task] * n_targets
    else:
        requested = list(task)
        if len(requested) != n_targets:
            raise ValueError(f"task has {len(requested)} entries but Y has {n_targets} columns")
    resolved: list[str] = []
    for j, (req, column) in enumerate(zip(requested, Y.T, strict=True)):
        if req not in (*TASKS, "auto"):
            raise ValueError(f"task must be 'auto', 'regression' or 'classification', got {req!r}")
        if np.isnan(column).all():
            raise ValueError(f"target column {j} has no labels")
        kind = ("classification" if _is_binary(column) else "regression") if req == "auto" else req
        if kind == "classification" and not _is_binary(column):
            raise ValueError(f"classification target column {j} must be coded 0/1 (NaN = missing)")
        resolved.append(kind)
    return resolved
