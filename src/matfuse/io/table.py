"""A validated table of molecules with its targets: the input of training and prediction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from matfuse.chem.duplicates import find_duplicates
from matfuse.chem.standardize import ParsedMolecules, Standardization, parse_smiles
from matfuse.io.readers import READ_ERROR_COLUMN, find_smiles_column, read_table
from matfuse.rows import error_counts


class InputTable:
    """What every validated input table shares: row errors, the target matrix and a summary.

    Subclasses are dataclasses with ``frame``, ``parsed`` and ``targets`` fields and say
    what their inputs are (``input_type``, ``input_col``, ``duplicates``).
    """

    frame: pd.DataFrame
    targets: list[str]
    #: key of the duplicate count in :meth:`summary`
    duplicates_label = "duplicate_inputs"

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def errors(self) -> list[str | None]:
        return self.parsed.errors  # type: ignore[attr-defined]

    def duplicates(self) -> dict[str, list[int]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def target_matrix(self) -> np.ndarray:
        """Targets as an (n, t) float array; missing or non-numeric labels are NaN."""
        if not self.targets:
            return np.empty((len(self), 0))
        cols = [pd.to_numeric(self.frame[t], errors="coerce") for t in self.targets]
        return np.column_stack([c.to_numpy(dtype=float) for c in cols])

    def summary(self) -> dict[str, object]:
        """Counts a user wants to see before training: rows, invalid rows, duplicates, labels."""
        Y = self.target_matrix()
        return {
            "rows": len(self),
            "input_type": self.input_type,  # type: ignore[attr-defined]
            "input_col": self.input_col,  # type: ignore[attr-defined]
            "invalid": self.parsed.n_invalid,  # type: ignore[attr-defined]
            "invalid_reasons": error_counts(self.errors),
            self.duplicates_label: len(self.duplicates()),
            "labels_per_target": {
                t: int(np.isfinite(Y[:, j]).sum()) for j, t in enumerate(self.targets)
            },
        }


@dataclass
class MoleculeTable(InputTable):
    """A frame, the name of its SMILES column, the parsed molecules and the target names.

    Rows are never dropped: ``parsed.errors[i]`` says why row ``i`` cannot be used.
    """

    frame: pd.DataFrame
    smiles_col: str
    parsed: ParsedMolecules
    targets: list[str]

    input_type = "molecule"
    duplicates_label = "duplicate_molecules"

    @property
    def input_col(self) -> str:
        return self.smiles_col

    @property
    def smiles(self) -> list[str | None]:
        return list(self.frame[self.smiles_col])

    def duplicates(self) -> dict[str, list[int]]:
        """Canonical SMILES occurring on several rows (same molecule, maybe drawn differently)."""
        return find_duplicates(self.parsed.canonical)


def load_molecule_table(
    source: str | Path | pd.DataFrame,
    *,
    smiles_col: str | None = None,
    targets: Sequence[str] | None = None,
    standardize: Standardization = "cleanup",
    allowed_elements: Sequence[str] | None = None,
    max_heavy_atoms: int | None = 200,
) -> MoleculeTable:
    """Read (if needed) and validate a molecule table.

    Target columns must exist; a missing one is a user error and raises ``KeyError`` with
    the available columns, while bad molecules only flag their own rows.
    """
    frame = source.copy() if isinstance(source, pd.DataFrame) else read_table(source)
    frame = frame.reset_index(drop=True)
    col = smiles_col or find_smiles_column(frame)
    if col not in frame.columns:
        raise KeyError(f"SMILES column {col!r} not found; columns: {list(frame.columns)}")
    targets = list(targets or [])
    missing = [t for t in targets if t not in frame.columns]
    if missing:
        raise KeyError(f"target column(s) {missing} not found; columns: {list(frame.columns)}")
    parsed = parse_smiles(
        frame[col].tolist(),
        standardize=standardize,
        allowed_elements=allowed_elements,
        max_heavy_atoms=max_heavy_atoms,
    )
    if READ_ERROR_COLUMN in frame.columns:
        for i, err in enumerate(frame[READ_ERROR_COLUMN]):
            if isinstance(err, str) and err:
                parsed.errors[i] = err
                parsed.mols[i] = None
                parsed.canonical[i] = None
    return MoleculeTable(frame=frame, smiles_col=col, parsed=parsed, targets=targets)
