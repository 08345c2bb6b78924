"""Transitional aliases of :mod:`matfuse.inputs` (removed once every caller has moved)."""

from typing import Any

from matfuse.inputs import InputTable, detect_columns, load_input_table
from matfuse.inputs.readers import READ_ERROR_COLUMN, read_table

MoleculeTable = InputTable


def find_smiles_column(frame: Any) -> str:
    return next(iter(detect_columns(frame, "molecule")))


def load_molecule_table(source: Any, *, smiles_col: Any = None, **kw: Any) -> InputTable:
    return load_input_table(source, input_type="molecule", input_col=smiles_col, **kw)


__all__ = [
    "READ_ERROR_COLUMN",
    "MoleculeTable",
    "find_smiles_column",
    "load_molecule_table",
    "read_table",
]
