"""Parse, validate and standardise SMILES without ever dropping a row.

Everything downstream (encoders, splitters, models) works on the output of
:func:`parse_smiles`: a row-aligned record of the RDKit molecule, its canonical SMILES
and, for rows that failed, a human-readable reason. Invalid rows stay in place as
``None`` so that a batch never loses or reorders a row.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar, Literal

from rdkit import Chem
from rdkit.Chem.MolStandardize import rdMolStandardize
from rdkit.rdBase import BlockLogs

from matfuse.rows import RowAligned

Standardization = Literal["none", "cleanup", "parent"]

#: Molecules larger than this are refused: descriptor codes become very slow and the
#: models in this package are not meant for polymers or proteins.
DEFAULT_MAX_HEAVY_ATOMS = 200
#: SMILES longer than this are refused before parsing to bound the cost of a bad row.
MAX_SMILES_LENGTH = 2000


@contextmanager
def quiet_rdkit():
    """Silence RDKit's C++ logger: row errors are reported per row instead of on stderr.

    Nestable: RDKit's ``BlockLogs`` restores the logging state it found, so an inner block
    (e.g. ``to_mol`` inside a quiet search loop) does not switch logging back on.
    """
    block = BlockLogs()
    try:
        yield
    finally:
        del block


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def to_mol(smiles: Any) -> Chem.Mol | None:
    """Return a sanitised RDKit molecule for a SMILES string, or ``None`` if it is invalid."""
    mol, _ = _parse_one(smiles)
    return mol


def _parse_one(smiles: Any) -> tuple[Chem.Mol | None, str | None]:
    """Parse one SMILES; return the molecule or the reason it failed."""
    if isinstance(smiles, Chem.Mol):
        return (smiles, None) if smiles.GetNumAtoms() else (None, "empty molecule")
    if _is_missing(smiles):
        return None, "empty SMILES"
    if not isinstance(smiles, str):
        return None, f"not a SMILES string ({type(smiles).__name__})"
    text = smiles.strip()
    odd = next((ch for ch in text if not (ch.isascii() and ch.isprintable())), None)
    if odd is not None:
        # bidirectional overrides and zero-width characters make a SMILES display as
        # something other than what it is; SMILES is printable ASCII, so refuse the rest
        return None, f"unparsable SMILES: non-ASCII or control character U+{ord(odd):04X}"
    if len(text) > MAX_SMILES_LENGTH:
        return None, f"SMILES too long ({len(text)} > {MAX_SMILES_LENGTH} characters)"
    if any(ch.isspace() for ch in text):
        # RDKit treats text after a space as the molecule name; a space inside a SMILES
        # column is almost always a data error, so refuse rather than guess.
        return None, "unparsable SMILES: contains whitespace"
    with quiet_rdkit():
        mol = Chem.MolFromSmiles(text, sanitize=False)
        if mol is None:
            return None, "unparsable SMILES: syntax error"
        try:
            Chem.SanitizeMol(mol)
        except Exception as exc:  # RDKit raises several private exception types
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return None, f"invalid chemistry: {reason}"
    if mol.GetNumAtoms() == 0:
        return None, "empty molecule"
    return mol, None


@lru_cache(maxsize=1)
def _standardizers() -> tuple[Any, Any, Any, Any]:
    # Building these parses dozens of SMARTS transforms; reusing them halves the cost of
    # standardisation compared with calling ``rdMolStandardize.Cleanup`` per molecule.
    with quiet_rdkit():
        return (
            rdMolStandardize.MetalDisconnector(),
            rdMolStandardize.Normalizer(),
            rdMolStandardize.Reionizer(),
            rdMolStandardize.Uncharger(),
        )


def standardize_mol(mol: Chem.Mol, mode: Standardization = "cleanup") -> Chem.Mol:
    """Standardise a molecule.

    ``"cleanup"`` (RDKit's ``Cleanup``: remove explicit H, disconnect metals, normalise
    functional-group drawings such as nitro or N-oxides, reionise) keeps every fragment, so
    the same compound drawn two ways gets one canonical SMILES. ``"parent"`` additionally
    keeps the largest organic fragment and neutralises it, the usual choice when salts and
    counter-ions are noise. ``"none"`` returns the molecule unchanged.
    """
    if mode == "none":
        return mol
    disconnector, normalizer, reionizer, uncharger = _standardizers()
    with quiet_rdkit():
        out = Chem.RemoveHs(mol)
        out = disconnector.Disconnect(out)
        out = normalizer.normalize(out)
        out = reionizer.reionize(out)
        Chem.AssignStereochemistry(out, cleanIt=True, force=True)
        if mode == "parent":
            out = rdMolStandardize.FragmentParent(out)
            out = uncharger.uncharge(out)
    return out


def canonical_smiles(mol: Chem.Mol | None, isomeric: bool = True) -> str | None:
    """RDKit canonical SMILES, the key used for caching, duplicates and leakage checks."""
    if mol is None:
        return None
    return Chem.MolToSmiles(mol, isomericSmiles=isomeric)


@dataclass
class ParsedMolecules(RowAligned):
    """Row-aligned result of parsing a batch of molecules.

    ``mols[i]`` and ``canonical[i]`` are ``None`` exactly when ``errors[i]`` is set.
    """

    inputs: list[Any]
    mols: list[Chem.Mol | None]
    canonical: list[str | None]
    errors: list[str | None]
    metadata: dict[str, Any] = field(default_factory=dict)

    row_fields: ClassVar[tuple[str, ...]] = ("inputs", "mols", "canonical", "errors")

    @property
    def objects(self) -> list[Chem.Mol | None]:
        """The parsed molecules (the name every parsed batch uses)."""
        return self.mols

    @property
    def keys(self) -> list[str | None]:
        """Canonical SMILES: the key for dedupe, caching and leakage checks."""
        return self.canonical


def _element_error(mol: Chem.Mol, allowed: frozenset[str] | None) -> str | None:
    if allowed is None:
        return None
    bad = sorted({a.GetSymbol() for a in mol.GetAtoms()} - allowed)
    return f"disallowed element(s): {', '.join(bad)}" if bad else None


def parse_smiles(
    smiles: Iterable[Any],
    *,
    standardize: Standardization = "cleanup",
    allowed_elements: Iterable[str] | None = None,
    max_heavy_atoms: int | None = DEFAULT_MAX_HEAVY_ATOMS,
) -> ParsedMolecules:
    """Parse and standardise a batch of SMILES (or RDKit molecules), keeping every row.

    >>> p = parse_smiles(["CCO", "C1CC", ""])
    >>> p.canonical[0], p.errors[1], p.errors[2]
    ('CCO', 'unparsable SMILES: syntax error', 'empty SMILES')
    """
    if isinstance(smiles, ParsedMolecules):
        return smiles
    inputs = list(smiles)
    allowed = frozenset(allowed_elements) if allowed_elements is not None else None
    mols: list[Chem.Mol | None] = []
    canon: list[str | None] = []
    errors: list[str | None] = []
    for item in inputs:
        mol, err = _parse_one(item)
        if mol is not None and err is None:
            err = _element_error(mol, allowed)
        if mol is not None and err is None and max_heavy_atoms is not None:
            n_heavy = mol.GetNumHeavyAtoms()
            if n_heavy > max_heavy_atoms:
                err = f"molecule too large ({n_heavy} heavy atoms > {max_heavy_atoms})"
        if mol is not None and err is None:
            try:
                mol = standardize_mol(mol, standardize)
                smi = canonical_smiles(mol)
            except Exception as exc:  # standardiser failures are rare but must not crash a batch
                mol, smi, err = None, None, f"standardisation failed: {exc}"
        else:
            mol, smi = None, None
        mols.append(mol)
        canon.append(smi)
        errors.append(err)
    return ParsedMolecules(inputs=inputs, mols=mols, canonical=canon, errors=errors)
