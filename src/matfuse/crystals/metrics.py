"""How good a set of generated crystals is: uniqueness, novelty, SUN rate, CSP match rate.

The definitions follow the papers whose numbers we compare with, so the settings are fixed
and named (:mod:`matfuse.crystals.matching`):

- uniqueness and novelty (MatterGen): ``StructureMatcher`` with ltol 0.2, stol 0.3,
  angle_tol 5°, primitive cell, attempt supercell; novel = matches no reference structure.
- SUN (stable, unique, novel; MatterGen): stable is ``e_above_hull <= threshold`` (0.1 eV/atom
  by default) on a hull made with some potential, which every result names: with an MLIP
  hull the SUN rate is a proxy for the DFT one.
- CSP match rate (CDVAE / DiffCSP): a prediction matches its reference under
  ``StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)``; the RMSE is pymatgen's RMS
  displacement normalised by (V/N)^(1/3), averaged over the matched references; with k
  predictions per reference the best-matching one counts (match rate "at k").

>>> from matfuse.crystals.prototypes import prototype_structure
>>> rs, cs = prototype_structure("rocksalt"), prototype_structure("cscl", {"Cs": "Na"})
>>> match_rate([(rs, rs), (cs, rs)]).match_rate
0.5
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Structure

from matfuse.crystals.matching import (
    DIFFCSP_SETTINGS,
    MATTERGEN_SETTINGS,
    diffcsp_matcher,
    group_duplicates,
    matches_any,
    mattergen_matcher,
    rms_distance,
)

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_STABILITY_THRESHOLD",
    "MatchRate",
    "SUNResult",
    "match_rate",
    "novelty",
    "sun_rate",
    "uniqueness",
    "unique_mask",
]

#: eV/atom above the hull still counted as stable (MatterGen's 0.1; 0.0 is the strict one).
DEFAULT_STABILITY_THRESHOLD = 0.1


def unique_mask(structures: Sequence[Structure]) -> np.ndarray:
    """True for the first structure of every group of matching ones (MatterGen settings)."""
    mask = np.zeros(len(structures), dtype=bool)
    for group in group_duplicates(structures, mattergen_matcher()):
        mask[group[0]] = True
    return mask


def uniqueness(structures: Sequence[Structure]) -> float:
    """Fraction of structures that are distinct from every earlier one (NaN for none)."""
    if not structures:
        return float("nan")
    return float(unique_mask(structures).mean())


def novelty(structures: Sequence[Structure], reference: Sequence[Structure]) -> np.ndarray:
    """True where a structure matches none of ``reference`` (MatterGen settings)."""
    matcher = mattergen_matcher()
    return np.array([not matches_any(s, reference, matcher) for s in structures], dtype=bool)


@dataclass(frozen=True)
class SUNResult:
    """Fractions of stable, unique, novel and SUN structures, and what they were made with."""

    n: int
    stable_rate: float
    unique_rate: float
    novel_rate: float
    sun_rate: float
    threshold: float
    potential: str
    matcher: str = "StructureMatcher(ltol=0.2, stol=0.3, angle_tol=5, primitive, supercell)"


def sun_rate(
    structures: Sequence[Structure],
    e_above_hull: Sequence[float],
    reference: Sequence[Structure],
    *,
    threshold: float = DEFAULT_STABILITY_THRESHOLD,
    potential: str = "CHGNet 0.3.0",
) -> SUNResult:
    """The SUN rate: stable (``e_above_hull <= threshold``), unique within the set, and
    novel against ``reference``. ``potential`` names whatever made the hull distances."""
    if len(structures) != len(e_above_hull):
        raise ValueError(f"{len(structures)} structures but {len(e_above_hull)} hull distances")
    n = len(structures)
    if n == 0:
        nan = float("nan")
        return SUNResult(0, nan, nan, nan, nan, threshold, potential)
    ehull = np.asarray(e_above_hull, dtype=float)
    stable = np.isfinite(ehull) & (ehull <= threshold)
    unique = unique_mask(structures)
    novel = novelty(structures, reference)
    sun = stable & unique & novel
    return SUNResult(
        n=n,
        stable_rate=float(stable.mean()),
        unique_rate=float(unique.mean()),
        novel_rate=float(novel.mean()),
        sun_rate=float(sun.mean()),
        threshold=threshold,
        potential=potential,
    )


@dataclass(frozen=True)
class MatchRate:
    """DiffCSP's CSP metric over references: match rate and mean normalised RMSE."""

    n: int
    match_rate: float
    rmse: float
    matched: tuple[bool, ...]
    rms: tuple[float, ...]
    settings: str = "StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)"


def match_rate(
    pairs: Sequence[tuple[Structure | Sequence[Structure], Structure]],
) -> MatchRate:
    """Match rate and RMSE of ``(predicted, reference)`` pairs (DiffCSP protocol).

    ``predicted`` may be one structure or the k candidates for that reference (match rate
    at k: the lowest RMS among the matching ones counts). A reference with no prediction
    (an empty list, or ``None``) counts as not matched.
    """
    matcher = diffcsp_matcher()
    matched: list[bool] = []
    rms: list[float] = []
    for predicted, reference in pairs:
        if predicted is None:
            preds: list[Structure] = []
        elif isinstance(predicted, Structure):
            preds = [predicted]
        else:
            preds = [p for p in predicted if p is not None]
        dists = [rms_distance(p, reference, matcher) for p in preds]
        finite = [d for d in dists if math.isfinite(d)]
        matched.append(bool(finite))
        rms.append(min(finite) if finite else float("nan"))
    n = len(matched)
    hits = [r for r in rms if math.isfinite(r)]
    return MatchRate(
        n=n,
        match_rate=float(np.mean(matched)) if n else float("nan"),
        rmse=float(np.mean(hits)) if hits else float("nan"),
        matched=tuple(matched),
        rms=tuple(rms),
    )


#: Exposed so reports can print the exact settings beside a number.
SETTINGS = {"mattergen": MATTERGEN_SETTINGS, "diffcsp": DIFFCSP_SETTINGS}
