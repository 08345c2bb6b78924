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
from matfuse.materials.table import (
    MaterialTable,
    detect_input,
    load_material_table,
    parse_materials,
)

__all__ = [
    "MaterialTable",
    "ParsedCompositions",
    "ParsedStructures",
    "SymmetryInfo",
    "SymmetryTable",
    "analyze_symmetry",
    "check_structure",
    "composition_key",
    "detect_input",
    "get_symmetry",
    "load_material_table",
    "parse_compositions",
    "parse_materials",
    "parse_structures",
    "structure_hash",
    "to_composition",
    "to_structure",
]
