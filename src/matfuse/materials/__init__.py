"""Inorganic materials: compositions and crystal structures, symmetry, energies, splits.

Needs the optional ``materials`` extra (pymatgen, spglib, ASE, CHGNet). Every parser keeps
one row out per row in, with a reason for each row it cannot use, like the molecule side.
"""

from matfuse.materials.compositions import (
    ParsedCompositions,
    composition_key,
    parse_compositions,
    to_composition,
)
from matfuse.materials.structures import (
    ParsedStructures,
    check_structure,
    parse_structures,
    structure_hash,
    to_structure,
)
from matfuse.materials.symmetry import SymmetryInfo, SymmetryTable, analyze_symmetry, get_symmetry

__all__ = [
    "ParsedCompositions",
    "ParsedStructures",
    "SymmetryInfo",
    "SymmetryTable",
    "analyze_symmetry",
    "check_structure",
    "composition_key",
    "get_symmetry",
    "parse_compositions",
    "parse_structures",
    "structure_hash",
    "to_composition",
    "to_structure",
]
