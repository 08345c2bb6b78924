"""Score a screened partition with a ``matfuse generate`` objective spec, partition by partition.

The spec is the same YAML/JSON as ``matfuse generate --objective`` (see
:mod:`matfuse.generate.objectives`): terms, each a desirability in [0, 1], and an
aggregation. Every row's score depends only on that row, so a partition is scored on its
own and memory stays that of one partition. A ``property: model`` term naming the model
being screened reads the partition's own ``pred_``/``std_`` columns (for example a window
probability ``p(min <= Y <= max)`` from the predicted mean and std) instead of predicting
again; other terms (RDKit properties, similarity, another model) evaluate the molecules.

Columns added: ``<term>_d`` (desirability) per term, ``<term>`` (raw value) for terms that
are not this model's predictions, and ``objective`` (the aggregate; empty for invalid rows,
which therefore never rank).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtri

from matfuse.generate.objectives import (
    ModelTerm,
    Objective,
    SpecError,
    Term,
    aggregate_scores,
    in_window_probability,
    load_objective,
)

__all__ = ["OBJECTIVE", "ObjectiveSource", "check_objective", "objective_source", "score_frame"]

#: The aggregate score's column, and what ``top.csv`` is ranked by when an objective is given.
OBJECTIVE = "objective"
#: How a worker finds the spec again: ``("file", absolute path)`` or ``("json", text)``.
ObjectiveSource = tuple[str, str]


def objective_source(spec: str | Path | Mapping[str, Any]) -> ObjectiveSource:
    """A picklable handle on a spec (a file path or a mapping) for the workers."""
    if isinstance(spec, Mapping):
        return ("json", json.dumps(spec, sort_keys=True))
    return ("file", str(Path(spec).resolve()))


def load_source(source: ObjectiveSource) -> Objective:
    kind, value = source
    return load_objective(json.loads(value) if kind == "json" else value)


def _reads_predictions(term: Term, model_dir: str) -> bool:
    """A model term of the very model being screened: its predictions are in the frame."""
    return isinstance(term, ModelTerm) and Path(term.path).resolve() == Path(model_dir).resolve()


def check_objective(objective: Objective, model_dir: str, kinds: list[str]) -> None:
    """Refuse a spec a partition cannot score (raises :class:`SpecError`, a user error)."""
    if objective.aggregate == "pareto":
        raise SpecError(
            "aggregate 'pareto' ranks a whole set at once; screening scores each partition "
            "on its own: use geometric, product or weighted-sum"
        )
    if "molecule" not in kinds:
        for term in objective.terms:
            if not _reads_predictions(term, model_dir):
                raise SpecError(
                    f"term {term.name!r} scores molecules, and this library holds "
                    f"{', '.join(kinds)}: only terms of the screened model apply"
                )


_OBJECTIVES: dict[ObjectiveSource, Objective] = {}
_LOCK = threading.Lock()


def worker_objective(source: ObjectiveSource) -> Objective:
    """The objective, built once per worker process (a model term loads its model)."""
    with _LOCK:
        if source not in _OBJECTIVES:
            _OBJECTIVES[source] = load_source(source)
        return _OBJECTIVES[source]


def score_frame(
    objective: Objective, frame: pd.DataFrame, model_dir: str, input_col: str, alpha: float
) -> pd.DataFrame:
    """``frame`` (a predicted partition) with the objective's columns before ``error``."""
    n = len(frame)
    valid = frame["error"].isna().to_numpy()
    rows = np.flatnonzero(valid)
    d = np.zeros((n, len(objective.terms)))
    added: dict[str, np.ndarray] = {}
    mols: list[Any] | None = None
    for k, term in enumerate(objective.terms):
        if _reads_predictions(term, model_dir):
            assert isinstance(term, ModelTerm)
            d[:, k] = _model_desirability(term, frame, alpha)
        else:
            if mols is None:
                from matfuse.chem.standardize import to_mol

                mols = [to_mol(s) for s in frame[input_col].iloc[rows]]
            ok = [i for i, m in zip(rows, mols, strict=True) if m is not None]
            raw = np.full(n, np.nan)
            if ok:
                res = term.evaluate([m for m in mols if m is not None])
                raw[ok] = res.raw
                d[ok, k] = res.desirability
            added[term.name] = raw
        added[f"{term.name}_d"] = np.where(valid, d[:, k], np.nan)
    score = aggregate_scores(d, objective.weights, objective.aggregate)
    added[OBJECTIVE] = np.where(valid, score, np.nan)
    out = frame.drop(columns=["error"])
    for name, values in added.items():
        out[name if name not in out.columns else f"{name}_objective"] = values
    out["error"] = frame["error"]
    return out


def _model_desirability(term: ModelTerm, frame: pd.DataFrame, alpha: float) -> np.ndarray:
    """What :meth:`ModelTerm.evaluate` gives, from the frame's predicted columns."""
    name = term.output
    mean = pd.to_numeric(frame[f"pred_{name}"], errors="coerce").to_numpy(dtype=float)
    std = _column(frame, f"std_{name}")
    if getattr(term, "_kind", "regression") != "regression":
        d = mean if term.goal != "minimize" else 1.0 - mean
        return np.nan_to_num(d, nan=0.0)
    lower, upper = _column(frame, f"lower_{name}"), _column(frame, f"upper_{name}")
    if not np.isfinite(std).any() and np.isfinite(lower).any():
        std = (upper - lower) / (2.0 * float(ndtri(1.0 - alpha / 2.0)))
    if term.goal == "range":
        d = in_window_probability(mean, std, term.low, term.high)
    else:
        d = term.modifier(mean) if term.modifier is not None else mean
    return np.nan_to_num(np.asarray(d, dtype=float), nan=0.0)


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)
