"""The three kinds of input matfuse learns from: molecules, compositions and crystal structures.

Everything that reads a user's table (``matfuse train/predict/benchmark``, the API) asks
this module which kind of input a table holds and in which column, then gets back a
validated, row-aligned table. Auto-detection goes by column names first (``smiles``, then
``cif``/``structure``, then ``formula``/``composition``) and by content second, in the order
structure → SMILES → formula: a formula is almost never valid SMILES, while short SMILES
such as ``CCO`` do read as formulas, so SMILES must be tried before formulas.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from matfuse.chem.standardize import ParsedMolecules, Standardization, parse_smiles
from matfuse.io.readers import SMILES_COLUMN_NAMES, find_smiles_column, read_table
from matfuse.io.table import MoleculeTable, load_molecule_table

InputKind = Literal["molecule", "composition", "structure"]
INPUT_KINDS: tuple[str, ...] = ("molecule", "composition", "structure")
MATERIAL_KINDS: tuple[str, ...] = ("composition", "structure")

#: Default encoders per input kind. Molecules: chosen on the MoleculeNet benchmark
#: (benchmarks/results/moleculenet.md): hashed Morgan counts carry substructure, RDKit
#: descriptors global physico-chemistry, and together they beat either alone on most tasks
#: at a few ms per molecule. Structures get their composition too: element statistics carry
#: most of the signal for formation energies, the structure fingerprint adds geometry.
DEFAULT_ENCODERS_BY_KIND: dict[str, tuple[str, ...]] = {
    "molecule": ("ecfp-count", "rdkit2d", "maccs"),
    "composition": ("composition",),
    "structure": ("composition", "structure-descriptors"),
}

#: Encoder modalities that can read each input kind.
COMPATIBLE_MODALITIES: dict[str, tuple[str, ...]] = {
    "molecule": ("smiles", "selfies", "graph"),
    "composition": ("composition",),
    "structure": ("composition", "structure"),
}


def check_kind(kind: str | None, allow_auto: bool = True) -> str | None:
    """Normalise an ``--input-type`` value (``None``/``auto`` mean detect)."""
    if kind is None or (allow_auto and str(kind).lower() == "auto"):
        return None
    key = str(kind).strip().lower()
    aliases = {
        "smiles": "molecule",
        "molecules": "molecule",
        "formula": "composition",
        "crystal": "structure",
        "cif": "structure",
    }
    key = aliases.get(key, key)
    if key not in INPUT_KINDS:
        raise ValueError(f"input type must be auto, {', '.join(INPUT_KINDS)}; got {kind!r}")
    return key


def default_encoders(kind: str) -> list[str]:
    """The default encoder set for an input kind."""
    return list(DEFAULT_ENCODERS_BY_KIND[check_kind(kind, allow_auto=False) or "molecule"])


def check_encoders(encoders: Sequence[str], kind: str) -> None:
    """Raise a clear ``ValueError`` when an encoder cannot read this kind of input."""
    from matfuse.encoders.registry import get_encoder

    allowed = COMPATIBLE_MODALITIES[kind]
    bad = []
    for name in encoders:
        try:
            modality = get_encoder(name).modality  # building is cheap: weights load lazily
        except (KeyError, ValueError, TypeError):
            continue  # unknown names are reported by the registry itself
        if modality not in allowed:
            bad.append(f"{name} ({modality})")
    if bad:
        raise ValueError(
            f"encoder(s) {', '.join(bad)} cannot read {kind} inputs; "
            f"use encoders of modality {', '.join(allowed)} (see `matfuse encoders`)"
        )


def detect_input_kind(
    frame: pd.DataFrame, input_type: str | None = None, input_col: str | None = None
) -> tuple[str, str]:
    """Which column holds the inputs, and are they molecules, compositions or structures?"""
    from matfuse.materials.table import detect_input

    kind = check_kind(input_type)
    if input_col is not None and input_col not in frame.columns:
        raise KeyError(f"input column {input_col!r} not found; columns: {list(frame.columns)}")
    if kind == "molecule":
        return "molecule", input_col or find_smiles_column(frame)
    if kind in MATERIAL_KINDS:
        return detect_input(frame, kind, input_col)
    lowered = {str(c).strip().lower(): c for c in frame.columns}
    if input_col is not None:
        name = str(input_col).strip().lower()
        if name in SMILES_COLUMN_NAMES or "smiles" in name:
            return "molecule", input_col
        if _smiles_rate(frame[input_col]) >= 0.6 and _structure_rate(frame[input_col]) == 0:
            return "molecule", input_col
        return detect_input(frame, None, input_col)
    if any(n in lowered for n in SMILES_COLUMN_NAMES) or any("smiles" in n for n in lowered):
        return "molecule", find_smiles_column(frame)
    try:  # material column names, then structure content
        return _material_by_name_or_structure(frame)
    except ValueError:
        pass
    try:
        return "molecule", find_smiles_column(frame)
    except ValueError:
        pass
    try:
        return detect_input(frame, "composition", None)
    except ValueError:
        raise ValueError(
            "could not tell which column holds the inputs (SMILES, formula or CIF); pass "
            f"--input-col and --input-type. Columns: {list(frame.columns)}"
        ) from None


def _material_by_name_or_structure(frame: pd.DataFrame) -> tuple[str, str]:
    from matfuse.materials.table import _column_by_content, _column_by_name

    for kind in MATERIAL_KINDS[::-1]:  # structures first: they carry more information
        col = _column_by_name(frame, kind)
        if col is not None:
            return kind, col
    col = _column_by_content(frame, "structure")
    if col is not None:
        return "structure", col
    raise ValueError("no material column")


def _smiles_rate(values: pd.Series) -> float:
    from rdkit import Chem

    from matfuse.chem.standardize import quiet_rdkit

    sample = [v for v in values.dropna().head(50) if isinstance(v, str) and v.strip()]
    if not sample:
        return 0.0
    with quiet_rdkit():
        return sum(Chem.MolFromSmiles(v.strip()) is not None for v in sample) / len(sample)


def _structure_rate(values: pd.Series) -> float:
    from matfuse.materials.structures import sniff_format

    sample = [v for v in values.dropna().head(30) if isinstance(v, str) and v.strip()]
    return sum(sniff_format(v) is not None for v in sample) / max(len(sample), 1)


def parse_inputs(
    items: Any, kind: str = "molecule", standardize: Standardization = "cleanup"
) -> Any:
    """Parse a batch of inputs of one kind into a row-aligned record (never drops a row)."""
    from matfuse.materials.table import parse_materials

    kind = check_kind(kind, allow_auto=False) or "molecule"
    if kind == "molecule":
        if isinstance(items, ParsedMolecules):
            return items
        return parse_smiles(list(items), standardize=standardize)
    return parse_materials(items, kind)


def load_input_table(
    source: str | Path | pd.DataFrame,
    *,
    input_type: str | None = None,
    input_col: str | None = None,
    targets: Sequence[str] | None = None,
    standardize: Standardization = "cleanup",
) -> Any:
    """Read and validate a table of molecules, compositions or structures.

    Returns a :class:`~matfuse.io.table.MoleculeTable` or a
    :class:`~matfuse.materials.table.MaterialTable`; both have ``frame``, ``parsed``,
    ``targets``, ``input_col``, ``input_type`` and ``target_matrix()``.
    """
    from matfuse.materials.table import load_material_table

    frame = source.copy() if isinstance(source, pd.DataFrame) else read_table(source)
    frame = frame.reset_index(drop=True)
    kind, col = detect_input_kind(frame, input_type, input_col)
    if kind == "molecule":
        return load_molecule_table(frame, smiles_col=col, targets=targets, standardize=standardize)
    return load_material_table(frame, input_type=kind, input_col=col, targets=targets)


def input_kind_of(table: MoleculeTable | Any) -> str:
    """The input kind of a validated table."""
    return "molecule" if isinstance(table, MoleculeTable) else table.input_type
