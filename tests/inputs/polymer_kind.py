"""A toy fourth input kind, defined in this one module only: polymer repeat units.

Polymer SMILES mark the two ends of a repeat unit with ``[*]`` (``[*]CC[*]`` is
polyethylene). The kind parses them with RDKit, keys them by canonical SMILES, is found by
a ``psmiles`` column or by ``[*]`` in the text, and converts to molecules (end groups capped
with hydrogen) so every molecule encoder and splitter reads it. Registering it is all it
takes for ``matfuse train/predict/benchmark --input-type polymer`` to work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rdkit import Chem

from matfuse.chem.standardize import parse_smiles, quiet_rdkit
from matfuse.inputs import KINDS, InputKind
from matfuse.rows import RowAligned


@dataclass
class ParsedPolymers(RowAligned):
    inputs: list[Any]
    mols: list[Any]
    canonical: list[str | None]
    errors: list[str | None]
    metadata: dict[str, Any] = field(default_factory=dict)

    row_fields: ClassVar[tuple[str, ...]] = ("inputs", "mols", "canonical", "errors")

    @property
    def objects(self) -> list[Any]:
        return self.mols

    @property
    def keys(self) -> list[str | None]:
        return self.canonical


def _cap(mol: Chem.Mol) -> Chem.Mol:
    """The repeat unit with its [*] end groups replaced by hydrogen."""
    rw = Chem.RWMol(mol)
    for atom in rw.GetAtoms():
        if atom.GetAtomicNum() == 0:
            atom.SetAtomicNum(1)
    capped = rw.GetMol()
    Chem.SanitizeMol(capped)
    return Chem.RemoveHs(capped)


def to_molecules(batch: ParsedPolymers) -> Any:
    capped = [_cap(m) if m is not None else None for m in batch.mols]
    out = parse_smiles(capped, standardize="none")
    out.inputs = list(batch.inputs)
    for i, err in enumerate(batch.errors):
        if err is not None:
            out.errors[i], out.mols[i], out.canonical[i] = err, None, None
    return out


class PolymerKind(InputKind):
    name = "polymer"
    description = "polymer repeat units as SMILES with [*] end groups"
    column_names = ("psmiles", "polymer", "polymer_smiles")
    name_priority = 5
    content_priority = 15
    modalities = ("polymer",)
    default_encoders = ("ecfp-count",)
    key_label = "canonical_psmiles"
    batch_type = ParsedPolymers
    noun = "polymer"
    plural = "polymers"
    conversions: ClassVar[dict[str, Any]] = {"molecule": to_molecules}

    def parse(self, values: Sequence[Any], **options: Any) -> ParsedPolymers:
        mols, canon, errors = [], [], []
        for value in values:
            with quiet_rdkit():
                ok = isinstance(value, str) and value.strip()
                mol = Chem.MolFromSmiles(value) if ok else None
            err = None
            if mol is None:
                err = "unparsable polymer SMILES"
            elif sum(a.GetAtomicNum() == 0 for a in mol.GetAtoms()) != 2:
                mol, err = None, "a repeat unit needs exactly two [*] end groups"
            mols.append(mol)
            canon.append(Chem.MolToSmiles(mol) if mol is not None else None)
            errors.append(err)
        return ParsedPolymers(list(values), mols, canon, errors)

    def reads_as(self, value: Any) -> bool:
        return (
            isinstance(value, str) and value.count("*") == 2 and bool(self.parse([value]).valid[0])
        )


def register() -> None:
    KINDS.add("polymer", PolymerKind(), description=PolymerKind.description)


def unregister() -> None:
    KINDS.remove("polymer")
