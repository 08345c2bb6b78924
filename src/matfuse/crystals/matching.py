"""When two crystal structures are the same: pymatgen's ``StructureMatcher`` at the literature's
settings, used for deduplication, novelty, ground-state checks and the DiffCSP match rate.

Two settings are standard, and which one a number used must be stated beside it:

- MatterGen's (ltol 0.2, stol 0.3, angle_tol 5°, primitive cell, attempt supercell): the
  tighter one, for uniqueness, novelty and deduplication of relaxed structures.
- DiffCSP's (stol 0.5, angle_tol 10°, ltol 0.3): the looser one of the CSP match rate, with
  the RMS displacement normalised by (V/N)^(1/3) as pymatgen's ``get_rms_dist`` returns it.

>>> from matfuse.crystals.prototypes import prototype_structure
>>> rs, cs = prototype_structure("rocksalt"), prototype_structure("cscl", {"Cs": "Na"})
>>> bool(mattergen_matcher().fit(rs, rs * (2, 1, 1))), bool(mattergen_matcher().fit(rs, cs))
(True, False)
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure

logger = logging.getLogger(__name__)

__all__ = [
    "DIFFCSP_SETTINGS",
    "MATTERGEN_SETTINGS",
    "diffcsp_matcher",
    "group_duplicates",
    "matches_any",
    "mattergen_matcher",
    "rms_distance",
]

MATTERGEN_SETTINGS = {
    "ltol": 0.2,
    "stol": 0.3,
    "angle_tol": 5.0,
    "primitive_cell": True,
    "attempt_supercell": True,
}
DIFFCSP_SETTINGS = {"stol": 0.5, "angle_tol": 10.0, "ltol": 0.3}


def mattergen_matcher() -> StructureMatcher:
    """``StructureMatcher`` at MatterGen's uniqueness / novelty settings."""
    return StructureMatcher(**MATTERGEN_SETTINGS)  # type: ignore[arg-type]


def diffcsp_matcher() -> StructureMatcher:
    """``StructureMatcher`` at the DiffCSP / CDVAE CSP match-rate settings."""
    return StructureMatcher(**DIFFCSP_SETTINGS)  # type: ignore[arg-type]


def group_duplicates(
    structures: Sequence[Structure], matcher: StructureMatcher | None = None
) -> list[list[int]]:
    """Indices of ``structures`` grouped into sets of matching ones, each group in input order.

    Structures are compared only within the same reduced formula (``StructureMatcher`` would
    refuse the others anyway, but grouping first keeps the pairwise work small).
    """
    matcher = matcher or mattergen_matcher()
    by_formula: dict[str, list[int]] = {}
    for i, s in enumerate(structures):
        by_formula.setdefault(s.composition.reduced_formula, []).append(i)
    groups: list[list[int]] = []
    for idx in by_formula.values():
        reps: list[list[int]] = []
        for i in idx:
            for group in reps:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    same = matcher.fit(structures[group[0]], structures[i])
                if same:
                    group.append(i)
                    break
            else:
                reps.append([i])
        groups.extend(reps)
    return sorted(groups, key=lambda g: g[0])


def rms_distance(a: Structure, b: Structure, matcher: StructureMatcher | None = None) -> float:
    """RMS site displacement between two structures, normalised by (V/N)^(1/3); NaN when they
    do not match (DiffCSP settings by default)."""
    matcher = matcher or diffcsp_matcher()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = matcher.get_rms_dist(a, b)
    except Exception as exc:
        logger.debug("get_rms_dist failed: %s", exc)
        return float("nan")
    return float(out[0]) if out is not None else float("nan")


def matches_any(
    structure: Structure, references: Sequence[Structure], matcher: StructureMatcher | None = None
) -> bool:
    """Whether ``structure`` matches one of ``references`` of the same reduced formula."""
    matcher = matcher or mattergen_matcher()
    formula = structure.composition.reduced_formula
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return any(
            matcher.fit(structure, ref)
            for ref in references
            if ref.composition.reduced_formula == formula
        )
