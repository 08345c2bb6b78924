"""Morgan bit vectors and Tanimoto nearest-neighbour similarity.

These fingerprints serve evaluation, not modelling: cluster splits group molecules by
them and reports plot error against the similarity of each test molecule to its nearest
training molecule ("does the model degrade away from its training data?"). They are
fixed to ECFP4-like settings (radius 2, 2048 bits) so that similarity numbers are
comparable across runs and with the literature, independently of whatever fingerprint
encoder a model happens to use.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from rdkit import DataStructs
from rdkit.Chem import rdFingerprintGenerator
from rdkit.DataStructs import ExplicitBitVect

from matfuse.chem.scaffolds import to_mol

__all__ = [
    "MORGAN_RADIUS",
    "MORGAN_SIZE",
    "morgan_bitvect",
    "morgan_bitvects",
    "nearest_neighbour_similarity",
    "nearest_neighbour_similarity_fps",
    "tanimoto_to_set",
]

MORGAN_RADIUS = 2
MORGAN_SIZE = 2048


@lru_cache(maxsize=8)
def _generator(radius: int, fp_size: int) -> Any:
    # Generators are cheap to call but not free to build; one per setting is enough.
    return rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=fp_size)


def morgan_bitvect(
    smiles_or_mol: Any, radius: int = MORGAN_RADIUS, fp_size: int = MORGAN_SIZE
) -> ExplicitBitVect | None:
    """Morgan bit vector of one molecule, or ``None`` if it cannot be parsed."""
    mol = to_mol(smiles_or_mol)
    if mol is None:
        return None
    return _generator(radius, fp_size).GetFingerprint(mol)


def morgan_bitvects(
    smiles_list: Sequence[Any], radius: int = MORGAN_RADIUS, fp_size: int = MORGAN_SIZE
) -> list[ExplicitBitVect | None]:
    """Row-aligned Morgan bit vectors; invalid or missing rows stay ``None`` in place."""
    return [morgan_bitvect(s, radius, fp_size) for s in smiles_list]


def tanimoto_to_set(fp: ExplicitBitVect, fps: Sequence[ExplicitBitVect]) -> np.ndarray:
    """Tanimoto similarity of one fingerprint to each of ``fps`` (no ``None`` allowed)."""
    if len(fps) == 0:
        return np.empty(0, dtype=np.float64)
    if fp is None or any(f is None for f in fps):
        # BulkTanimotoSimilarity segfaults on None rather than raising
        raise ValueError("tanimoto_to_set got None; filter invalid molecules first")
    return np.asarray(DataStructs.BulkTanimotoSimilarity(fp, fps), dtype=np.float64)


def nearest_neighbour_similarity_fps(
    query_fps: Sequence[ExplicitBitVect | None], reference_fps: Sequence[ExplicitBitVect | None]
) -> np.ndarray:
    """Max Tanimoto of each query fingerprint to the reference set.

    ``None`` queries give NaN; ``None`` references are ignored; an empty reference set
    gives NaN everywhere (there is no neighbour to be similar to).
    """
    refs = [fp for fp in reference_fps if fp is not None]
    out = np.full(len(query_fps), np.nan, dtype=np.float64)
    if not refs:
        return out
    for i, fp in enumerate(query_fps):
        if fp is not None:
            out[i] = max(DataStructs.BulkTanimotoSimilarity(fp, refs))
    return out


def nearest_neighbour_similarity(
    query_smiles: Sequence[Any], reference_smiles: Sequence[Any]
) -> np.ndarray:
    """Max Tanimoto (Morgan r=2, 2048 bits) of each query molecule to the reference set.

    Returns a float array aligned with ``query_smiles``; NaN for invalid queries. An
    identical molecule in the reference set gives 1.0, which is the point: duplicates
    between train and test are visible in the report rather than silently flattering it.
    """
    return nearest_neighbour_similarity_fps(
        morgan_bitvects(query_smiles), morgan_bitvects(reference_smiles)
    )
