"""Which column of a table is the target: ranked guesses and label-leak warnings.

A new user's file rarely says which column to learn. The ESOL file, for instance, holds the
measured solubility *and* the prediction of the old ESOL model, plus descriptors and an ID.
:func:`rank_target_candidates` orders the numeric columns so that names of measurements
(``measured``, ``expt``, ``target``, ``y``, ``label``...) come first, names of predictions
and descriptors last, and identifiers or row counters never appear;
:func:`collinear_columns` finds columns that almost repeat the chosen target (a model
would learn the leak, not the property).

>>> import pandas as pd
>>> frame = pd.DataFrame({"id": [1, 2, 3, 4], "predicted y": [1.0, 2.1, 2.9, 4.2],
...                       "measured y": [1.1, 2.0, 3.2, 3.9]})
>>> guess_target(frame)
'measured y'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "Candidate",
    "Collinear",
    "collinear_columns",
    "guess_target",
    "numeric_columns",
    "rank_target_candidates",
]

#: name tokens of a measured or designated label: these columns come first
_LABEL_TOKENS = {
    "measured": "measured",
    "measurement": "measured",
    "expt": "experimental",
    "exp": "experimental",
    "experimental": "experimental",
    "observed": "observed",
    "obs": "observed",
    "target": "a target",
    "y": "a target",
    "label": "a label",
    "labels": "a label",
    "value": "a value",
    "true": "a true value",
    "actual": "a true value",
}
#: names of properties commonly learned (neither measured nor predicted by name)
_PROPERTY_TOKENS = frozenset(
    "pic50 ic50 pki ki kd ec50 logs solubility logd lipophilicity activity active class "
    "toxicity tox gap bandgap heat ref formation energy efermi modulus tc permeability "
    "clearance affinity potency p_np bbbp freesolv hydration yield".split()
)
#: name tokens of another model's output: these columns come last
_PREDICTION_TOKENS = {
    "predicted": "predicted",
    "prediction": "predicted",
    "predictions": "predicted",
    "pred": "predicted",
    "estimate": "estimated",
    "estimated": "estimated",
    "est": "estimated",
    "model": "a model's output",
    "calc": "calculated",
    "calculated": "calculated",
    "computed": "computed",
    "dft": "computed",
    "fitted": "fitted",
}
#: name tokens (or joined phrases) of input descriptors, which are features, not labels
_DESCRIPTOR_TOKENS = frozenset(
    "weight mw molwt degree rings ring bonds bond donors donor acceptors acceptor hbd hba "
    "tpsa psa surface area rotatable rb heavy atoms atom count number num n nsites natoms "
    "volume density spacegroup chiral charge fraction fsp3 alogp slogp mr estate "
    "descriptor".split()
)
#: name tokens of identifiers and row positions: never a target
_ID_TOKENS = frozenset(
    "id ids index idx row rows name names smiles cid key cas inchi inchikey file path "
    "unnamed mpid formula cif poscar structure composition material mol molecule".split()
)


@dataclass(frozen=True)
class Candidate:
    """A numeric column that could be the target, its score (higher first) and why."""

    name: str
    score: float
    reason: str


@dataclass(frozen=True)
class Collinear:
    """A column whose values almost repeat the target's (Pearson ``r`` on shared rows)."""

    name: str
    r: float


def _tokens(name: str) -> list[str]:
    """Lower-case words of a column name: ``"ESOL predicted logS"`` -> esol, predicted, logs."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", str(name))  # HeavyAtomCount -> Heavy Atom Count
    return [t for t in re.split(r"[^0-9a-z]+", spaced.lower()) if t]


def numeric_columns(frame: pd.DataFrame, exclude: Sequence[str] = ()) -> list[str]:
    """Columns whose present values are mostly (at least half) numbers."""
    out = []
    for col in frame.columns:
        if col in exclude or str(col).startswith("_"):
            continue
        present = int(frame[col].notna().sum())
        values = pd.to_numeric(frame[col], errors="coerce")
        if present and values.notna().sum() >= 0.5 * present:
            out.append(str(col))
    return out


def _is_counter(values: pd.Series) -> bool:
    """Integer, all distinct and strictly monotone over the rows: a row number or an ID."""
    v = values.dropna().to_numpy(dtype=float)
    if len(v) < 3 or not np.all(v == np.round(v)):
        return False
    step = np.diff(v)
    return bool(np.all(step > 0) or np.all(step < 0))


def _is_id_like(name: str) -> bool:
    tokens = _tokens(name)
    if not tokens:
        return True  # an empty header: the index pandas wrote
    joined = "".join(tokens)
    return bool(_ID_TOKENS.intersection(tokens)) or joined in {"mpid", "materialid"}


def _score(name: str) -> tuple[float, str]:
    tokens = _tokens(name)
    label = next((_LABEL_TOKENS[t] for t in tokens if t in _LABEL_TOKENS), None)
    prediction = next((_PREDICTION_TOKENS[t] for t in tokens if t in _PREDICTION_TOKENS), None)
    if prediction is not None:  # "predicted y" is a prediction even though it says y
        return -3.0, f"named like {prediction} values (another model's output?)"
    if label is not None:
        return 3.0, f"named like {label}"
    descriptor = [t for t in tokens if t in _DESCRIPTOR_TOKENS]
    if descriptor:
        return -2.0, f"named like a descriptor ({' '.join(descriptor)})"
    if _PROPERTY_TOKENS.intersection(tokens) or any(t.startswith("log") for t in tokens):
        return 2.0, "named like a property"
    return 0.0, "a numeric column"


def rank_target_candidates(frame: pd.DataFrame, exclude: Sequence[str] = ()) -> list[Candidate]:
    """Numeric columns that could be the target, the likeliest first.

    Names of measurements and labels first, then names of common properties, then other
    numeric columns, then descriptors, then predictions of another model; ties keep the
    table's column order. Columns in ``exclude`` (the input columns), identifiers (``id``,
    ``index``, ``name``, ``smiles``, ``cid``...) and constant columns never appear, nor do
    monotone integer counters unless their name says they are the label (``y``, ``target``).
    """
    out: list[Candidate] = []
    for col in numeric_columns(frame, exclude):
        values = pd.to_numeric(frame[col], errors="coerce")
        if _is_id_like(col) or values.nunique(dropna=True) < 2:
            continue
        score, reason = _score(col)
        if _is_counter(values) and score < 3.0:  # a row number, unless named as the label
            continue
        out.append(Candidate(col, score, reason))
    order = {c.name: i for i, c in enumerate(out)}
    return sorted(out, key=lambda c: (-c.score, order[c.name]))


def guess_target(frame: pd.DataFrame, exclude: Sequence[str] = ()) -> str | None:
    """The likeliest target column (:func:`rank_target_candidates`), ``None`` if none fits."""
    ranked = rank_target_candidates(frame, exclude)
    return ranked[0].name if ranked else None


def collinear_columns(
    frame: pd.DataFrame,
    target: str,
    threshold: float = 0.98,
    exclude: Sequence[str] = (),
    min_rows: int = 3,
) -> list[Collinear]:
    """Numeric columns with ``|r| >= threshold`` against ``target``: a possible label leak.

    Pearson correlation on the rows where both are present (at least ``min_rows``); the
    strongest first. ``exclude`` names columns not to check (other targets, inputs).
    """
    y = pd.to_numeric(frame[target], errors="coerce")
    out: list[Collinear] = []
    for col in numeric_columns(frame, [target, *exclude]):
        x = pd.to_numeric(frame[col], errors="coerce")
        both = x.notna() & y.notna()
        if both.sum() < min_rows or x[both].nunique() < 2 or y[both].nunique() < 2:
            continue
        r = float(np.corrcoef(x[both].to_numpy(float), y[both].to_numpy(float))[0, 1])
        if np.isfinite(r) and abs(r) >= threshold:
            out.append(Collinear(col, r))
    return sorted(out, key=lambda c: -abs(c.r))
