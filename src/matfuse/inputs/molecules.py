"""Molecules as an input kind: SMILES (or RDKit molecules, or SDF records read into SMILES).

The chemistry (parsing, standardisation, canonical SMILES) lives in
:mod:`matfuse.chem.standardize`; this module says how the rest of matfuse finds, parses and
keys molecules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from matfuse.chem.standardize import ParsedMolecules, parse_smiles
from matfuse.inputs.kinds import KINDS, InputKind

#: Column names that are taken as the SMILES column, in order of preference.
SMILES_COLUMN_NAMES = ("smiles", "canonical_smiles", "smi", "smiles_string", "mol", "molecule")


class MoleculeKind(InputKind):
    """SMILES strings; the key is the RDKit canonical SMILES after standardisation.

    Default encoders were chosen on the MoleculeNet benchmark
    (``benchmarks/results/moleculenet.md``): hashed Morgan counts carry substructure, RDKit
    descriptors global physico-chemistry and MACCS keys a few named groups; together they
    beat each alone on most tasks at a few ms per molecule.
    """

    name = "molecule"
    description = "molecules as SMILES (standardised, canonicalised)"
    aliases = ("molecules", "smiles", "mol")
    column_names = SMILES_COLUMN_NAMES
    name_hints = ("smiles",)
    name_priority = 10
    content_priority = 20
    modalities = ("smiles", "selfies", "graph")
    default_encoders = ("ecfp-count", "rdkit2d-fast", "maccs")  # screening_fast_choice.md
    options = ("standardize", "allowed_elements", "max_heavy_atoms")
    key_label = "canonical_smiles"
    batch_type = ParsedMolecules
    noun = "molecule"
    plural = "molecules"
    conversions: ClassVar[dict[str, Any]] = {}

    def parse(self, values: Sequence[Any], **options: Any) -> ParsedMolecules:
        return parse_smiles(list(values), **options)

    def accepts_object(self, value: Any) -> bool:
        return type(value).__name__ == "Mol"

    def reads_as(self, value: Any) -> bool:
        if not isinstance(value, str):
            return self.accepts_object(value)
        return bool(parse_smiles([value], standardize="none").valid[0])

    def similarity_inputs(self, batch: ParsedMolecules) -> list[Any] | None:
        return list(batch.canonical)

    def excludes(self) -> tuple[str, ...]:
        # CIF or POSCAR text can contain fragments RDKit reads; a column with any structure
        # text is not a SMILES column
        return ("structure",)


KINDS.add(
    MoleculeKind.name,
    MoleculeKind(),
    description=MoleculeKind.description,
    aliases=MoleculeKind.aliases,
    tags={"builtin"},
)
