"""Small helpers shared by tests (importable because tests/ is on the path via conftest)."""

from __future__ import annotations

import numpy as np


def logp(smiles: list[str]) -> np.ndarray:
    """A learnable synthetic target: Crippen logP (deterministic, RDKit-computed)."""
    from rdkit import Chem
    from rdkit.Chem import Crippen

    return np.array([Crippen.MolLogP(Chem.MolFromSmiles(s)) for s in smiles])
