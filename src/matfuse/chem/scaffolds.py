"""Bemis–Murcko scaffolds, the grouping key of scaffold splits.

A scaffold split is only as honest as its scaffolds, so this module is deliberately
forgiving on input (SMILES, RDKit molecules, ``None``) and strict on output: a canonical
scaffold SMILES, ``""`` for an acyclic molecule (all acyclic molecules share that one
empty scaffold, as in chemprop and DeepChem) and ``None`` when the input cannot be
parsed. It never raises, because one bad row must not abort a split of 40k molecules.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from rdkit import Chem
from rdkit.Chem.Scaffolds import MurckoScaffold
from rdkit.rdBase import BlockLogs

from matfuse.chem.standardize import to_mol

__all__ = ["murcko_scaffold", "murcko_scaffolds", "to_mol"]


def murcko_scaffold(smiles_or_mol: Any, generic: bool = False) -> str | None:
    """Canonical Bemis–Murcko scaffold SMILES of a molecule.

    Args:
        smiles_or_mol: SMILES string or RDKit molecule; ``None``/NaN/invalid are allowed.
        generic: if true, return the generic framework (all atoms carbon, all bonds single,
            exocyclic substituents removed), which groups e.g. pyridines with benzenes.

    Returns:
        The scaffold SMILES (stereochemistry dropped, so enantiomers share a scaffold),
        ``""`` for acyclic molecules, or ``None`` if the input is not a valid molecule.
    """
    if isinstance(smiles_or_mol, float) and math.isnan(smiles_or_mol):
        return None
    mol = to_mol(smiles_or_mol)
    if mol is None:
        return None
    block = BlockLogs()
    try:
        if mol.GetRingInfo().NumRings() == 0:
            return ""
        core = MurckoScaffold.GetScaffoldForMol(mol)
        if generic:
            # MakeScaffoldGeneric turns exocyclic C=O into C-C; stripping again removes them.
            core = MurckoScaffold.GetScaffoldForMol(MurckoScaffold.MakeScaffoldGeneric(core))
        return Chem.MolToSmiles(core, isomericSmiles=False)
    except Exception:  # e.g. sanitisation failures on exotic valences in the generic form
        return None
    finally:
        del block


def murcko_scaffolds(items: Iterable[Any], generic: bool = False) -> list[str | None]:
    """Row-aligned :func:`murcko_scaffold` for a batch (``None`` kept in place)."""
    return [murcko_scaffold(item, generic=generic) for item in items]
