"""One call that turns test-set predictions into ``report.json`` plus figures.

The report is the artefact people compare across runs, so it is strict JSON (NaN and
infinity become ``null``; Python's default would write the invalid literal ``NaN``
that ``jq``, browsers and most JSON parsers reject), it records how many rows each
number rests on, and it relates error to the distance from the training set whenever
SMILES are given.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from matfuse.chem.scaffolds import to_mol
from matfuse.chem.similarity import nearest_neighbour_similarity
from matfuse.evaluate.baseline import compare_to_baseline, evaluate_baseline
from matfuse.evaluate.metrics import error_by_similarity, evaluate_targets
from matfuse.evaluate.plots import parity_plot, residual_vs_similarity_plot, roc_plot
from matfuse.evaluate.splitters import scaffold_overlap
from matfuse.inputs.writers import write_text

__all__ = ["json_safe", "safe_filename", "write_report"]

REPORT_NAME = "report.json"


def json_safe(obj: Any) -> Any:
    """Recursively convert to strict-JSON types: NaN/inf → None, NumPy → Python.

    Unknown objects become their ``str`` so that a user's ``extra`` payload can never
    make the report unwritable.
    """
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, np.generic):
        return json_safe(obj.item())
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, list | tuple | set | frozenset):
        return [json_safe(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def safe_filename(name: str, used: set[str] | None = None, fallback: str = "target") -> str:
    """File-name stem from a target name (which may contain spaces, '/', units...).

    Keeps ``[A-Za-z0-9._-]``, collapses the rest to ``_``; ``used`` (updated in place)
    makes stems unique when two names sanitise to the same string.
    """
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._") or fallback
    stem = stem[:80]
    if used is not None:
        base, k = stem, 2
        while stem in used:
            stem = f"{base}_{k}"
            k += 1
        used.add(stem)
    return stem


def _as_2d(a: Any, n_targets: int, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] != n_targets:
        raise ValueError(f"{name} must have shape (n, {n_targets}), got {arr.shape}")
    return arr


def _n_train(train_smiles: Sequence[Any] | None, Y_train: Any) -> int | None:
    if train_smiles is not None:
        return len(train_smiles)
    return None if Y_train is None else int(np.asarray(Y_train).shape[0])


def _similarity_summary(sim: np.ndarray) -> dict[str, Any]:
    finite = sim[np.isfinite(sim)]
    if finite.size == 0:
        return {"n": 0}
    q10, q50, q90 = np.quantile(finite, [0.1, 0.5, 0.9])
    return {
        "n": int(finite.size),
        "mean": float(finite.mean()),
        "median": float(q50),
        "q10": float(q10),
        "q90": float(q90),
        # identical or near-identical molecules in train flatter the test score
        "fraction_ge_0.9": float(np.mean(finite >= 0.9)),
    }


def write_report(
    out_dir: str | Path,
    *,
    target_names: Sequence[str],
    task_types: Sequence[str],
    Y_true: Any,
    Y_pred: Any,
    Y_std: Any = None,
    intervals: Any = None,
    test_smiles: Sequence[Any] | None = None,
    train_smiles: Sequence[Any] | None = None,
    split_name: str = "",
    extra: dict[str, Any] | None = None,
    units: Mapping[str, str] | None = None,
    Y_train: Any = None,
) -> dict[str, Any]:
    """Evaluate test predictions, write ``report.json`` and one set of PNGs per target.

    Figures per target: parity (regression, with ``Y_std`` error bars) or ROC
    (classification), plus |error| vs. nearest-training-neighbour similarity for
    regression targets when both ``test_smiles`` and ``train_smiles`` are given.
    Computing that similarity costs one Tanimoto pass of test × train (about 20 s for
    4k × 32k on one core). ``units`` maps target names to axis units.

    ``Y_train`` (the training labels, (n_train, t), NaN allowed) adds a ``baseline``
    section: the metrics of the trivial baseline (training median for regression, training
    prior rate for classification; see :mod:`matfuse.evaluate.baseline`) in the layout of
    ``metrics``, the training-mean variant, the constants, and per target ``comparison``
    with ``beats_baseline`` on the primary metric (MAE / ROC-AUC). Without it a test MAE
    cannot be told apart from one a constant would reach, so every caller that has the
    training labels should pass them.

    Returns:
        The report exactly as written (JSON-safe: NaN replaced by ``None``). File paths
        in ``files`` are relative to ``out_dir``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = [str(n) for n in target_names]
    n_targets = len(names)
    yt = _as_2d(Y_true, n_targets, "Y_true")
    yp = _as_2d(Y_pred, n_targets, "Y_pred")
    ystd = None if Y_std is None else _as_2d(Y_std, n_targets, "Y_std")
    metrics = evaluate_targets(yt, yp, list(task_types), names, intervals=intervals)
    baseline = None
    if Y_train is not None:
        ytr = _as_2d(Y_train, n_targets, "Y_train")
        baseline = evaluate_baseline(ytr, yt, list(task_types), names)
        baseline["comparison"] = compare_to_baseline(metrics, baseline)

    similarity = None
    sim = None
    if test_smiles is not None and train_smiles is not None:
        if len(test_smiles) != yt.shape[0]:
            raise ValueError(f"{len(test_smiles)} test SMILES for {yt.shape[0]} rows")
        # parse once: fingerprints and scaffolds both start from the molecules
        test_mols = [to_mol(s) for s in test_smiles]
        train_mols = [to_mol(s) for s in train_smiles]
        sim = nearest_neighbour_similarity(test_mols, train_mols)
        similarity = {
            "nearest_train_tanimoto": _similarity_summary(sim),
            "scaffold_overlap": scaffold_overlap(train_mols, test_mols),
        }

    files: dict[str, list[str]] = {}
    error_bins: dict[str, Any] = {}
    used: set[str] = set()
    for j, (name, task) in enumerate(zip(names, task_types, strict=True)):
        stem = safe_filename(name, used, fallback=f"target_{j}")
        unit = (units or {}).get(name)
        title = f"{name} — {split_name} test" if split_name else f"{name} — test"
        written: list[Path] = []
        if task == "regression":
            std = None if ystd is None else ystd[:, j]
            written.append(
                parity_plot(yt[:, j], yp[:, j], std, title, out / f"{stem}_parity.png", units=unit)
            )
            if sim is not None:
                err = yp[:, j] - yt[:, j]
                error_bins[name] = error_by_similarity(err, sim)
                written.append(
                    residual_vs_similarity_plot(
                        err, sim, title, out / f"{stem}_error_vs_similarity.png", units=unit
                    )
                )
        else:
            written.append(roc_plot(yt[:, j], yp[:, j], title, out / f"{stem}_roc.png"))
        files[name] = [p.relative_to(out).as_posix() for p in written]

    report = {
        "split": split_name,
        "counts": {
            "test": int(yt.shape[0]),
            "train": _n_train(train_smiles, Y_train),
            "labelled": {n: int(np.isfinite(yt[:, j]).sum()) for j, n in enumerate(names)},
        },
        "target_names": names,
        "task_types": list(task_types),
        "metrics": metrics,
        "baseline": baseline,
        "similarity": similarity,
        "error_by_similarity": error_bins or None,
        "files": files,
        "extra": extra or {},
    }
    safe = json_safe(report)
    write_text(json.dumps(safe, indent=2, allow_nan=False) + "\n", out / REPORT_NAME)
    return safe
