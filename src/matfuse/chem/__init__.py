"""Molecule handling: parsing, standardisation and canonical SMILES."""

from matfuse.chem.standardize import (
    ParsedMolecules,
    canonical_smiles,
    parse_smiles,
    standardize_mol,
    to_mol,
)

__all__ = ["ParsedMolecules", "canonical_smiles", "parse_smiles", "standardize_mol", "to_mol"]
