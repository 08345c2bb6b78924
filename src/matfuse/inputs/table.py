"""A validated table of inputs with its targets: what training and prediction start from.

One class for every kind: the frame as read, which column holds which kind of input, the
parsed batch of each such column and the target names. Rows are never dropped:
``parsed.errors[i]`` says why row ``i`` cannot be used. A table may hold several modality
columns (``formula`` and ``cif``); then ``parsed`` is a :class:`~matfuse.inputs.batch.MultiBatch`
and a row with one modality missing keeps the others.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from matfuse.chem.duplicates import find_duplicates
from matfuse.inputs.batch import MultiBatch
from matfuse.inputs.kinds import detect_columns, get_kind
from matfuse.inputs.readers import READ_ERROR_COLUMN, read_table
from matfuse.rows import error_counts

logger = logging.getLogger(__name__)

__all__ = ["InputTable", "label_problems", "load_input_table", "refuse_headerless"]


@dataclass
class InputTable:
    """A frame, its input columns (column → kind), their parsed batches and the targets."""

    frame: pd.DataFrame
    columns: dict[str, str]
    batches: dict[str, Any]
    targets: list[str]

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def parsed(self) -> Any:
        """The batch of the only input column, or a :class:`MultiBatch` of all of them."""
        if len(self.batches) == 1:
            return next(iter(self.batches.values()))
        return MultiBatch(dict(self.batches))

    @property
    def input_type(self) -> str:
        """The kind of the inputs (``composition+structure`` for several columns)."""
        return "+".join(self.columns.values())

    @property
    def input_col(self) -> str:
        """The (first) input column."""
        return next(iter(self.columns))

    @property
    def input_cols(self) -> list[str]:
        return list(self.columns)

    @property
    def inputs(self) -> list[Any]:
        """The raw values of the (first) input column."""
        return list(self.frame[self.input_col])

    @property
    def errors(self) -> list[str | None]:
        return list(self.parsed.errors)

    def duplicates(self) -> dict[str, list[int]]:
        """Inputs with the same canonical key on several rows (same molecule, drawn twice)."""
        return find_duplicates(self.parsed.keys)

    def target_matrix(self) -> np.ndarray:
        """Targets as an (n, t) float array; missing, non-numeric or infinite labels are NaN."""
        if not self.targets:
            return np.empty((len(self), 0))
        cols = [pd.to_numeric(self.frame[t], errors="coerce") for t in self.targets]
        Y = np.column_stack([c.to_numpy(dtype=float) for c in cols])
        Y[~np.isfinite(Y)] = np.nan
        return Y

    def summary(self) -> dict[str, object]:
        """Counts a user wants to see before training: rows, invalid rows, duplicates, labels."""
        Y = self.target_matrix()
        return {
            "rows": len(self),
            "input_type": self.input_type,
            "input_col": self.input_col,
            "invalid": self.parsed.n_invalid,
            "invalid_reasons": error_counts(self.errors),
            "duplicate_inputs": len(self.duplicates()),
            "labels_per_target": {
                t: int(np.isfinite(Y[:, j]).sum()) for j, t in enumerate(self.targets)
            },
            "unusable_labels": label_problems(self.frame, self.targets),
        }


def label_problems(frame: pd.DataFrame, targets: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per target, how many labels are present but unusable (text, infinite, overflowing).

    Empty cells are missing labels, not problems; ``abc``, ``inf`` and ``1e400`` are data
    errors a user should hear about rather than rows that silently vanish from training.
    """
    out: dict[str, dict[str, int]] = {}
    for t in targets:
        raw = frame[t]
        present = raw.notna() & ~raw.astype(str).str.strip().isin(["", "nan", "NaN"])
        numeric = pd.to_numeric(raw, errors="coerce")
        text = int((present & numeric.isna()).sum())
        infinite = int((present & np.isinf(numeric.to_numpy(dtype=float))).sum())
        if text or infinite:
            out[t] = {"not_a_number": text, "infinite": infinite}
    return out


def load_input_table(
    source: str | Path | pd.DataFrame,
    *,
    input_type: str | None = None,
    input_col: str | Sequence[str] | None = None,
    targets: Sequence[str] | None = None,
    **options: Any,
) -> InputTable:
    """Read (if needed) and validate a table of molecules, compositions or structures.

    ``input_type`` (``None``/``auto`` = detect; ``a+b`` for several columns) and
    ``input_col`` (one column or several) override detection. ``options`` are parse
    options (``standardize``, ``allowed_elements``, ``min_distance``...), each passed to the
    kinds that understand it. Target columns must exist (``KeyError`` listing the columns),
    while bad inputs only flag their own rows.
    """
    frame = source.copy() if isinstance(source, pd.DataFrame) else read_table(source)
    frame = frame.reset_index(drop=True)
    cols = [input_col] if isinstance(input_col, str) else list(input_col or [])
    columns = detect_columns(frame, input_type, cols or None)
    targets = list(targets or [])
    missing = [t for t in targets if t not in frame.columns]
    if missing:
        raise KeyError(f"target column(s) {missing} not found; columns: {list(frame.columns)}")
    refuse_headerless(frame, columns, from_file=not isinstance(source, pd.DataFrame))
    batches: dict[str, Any] = {}
    for col, kind_name in columns.items():
        if kind_name in batches:
            raise ValueError(f"two input columns of kind {kind_name!r}: give one per kind")
        kind = get_kind(kind_name)
        batch = kind.parse(frame[col].tolist(), **kind.parse_options(options))
        if READ_ERROR_COLUMN in frame.columns:
            _apply_read_errors(batch, frame[READ_ERROR_COLUMN])
        batches[kind_name] = batch
    logger.info("read %d rows; inputs %s", len(frame), columns)
    return InputTable(frame=frame, columns=columns, batches=batches, targets=targets)


class HeaderlessTableError(ValueError):
    """A table whose first line is data, not column names (its first row would be lost)."""

    def __init__(self, column: str, kind: str) -> None:
        self.column = column
        self.kind = kind
        super().__init__(
            f"the first line looks like data, not a header (column name {column!r} reads as "
            f"a {kind}): add a header line naming the columns"
        )


def refuse_headerless(frame: pd.DataFrame, columns: dict[str, str], from_file: bool) -> None:
    """A file read without its header line would silently lose its first row: refuse it."""
    if not from_file:
        return
    for col, kind_name in columns.items():
        kind = get_kind(kind_name)
        name = str(col).strip()
        if name.lower() in kind.column_names or not name:
            continue
        if kind.reads_as(name) and kind.content_score([name]) == 1.0:
            raise HeaderlessTableError(name, kind.noun)


def _apply_read_errors(batch: Any, errors: pd.Series) -> None:
    """Rows the file reader could not read (e.g. a broken SDF record) stay invalid."""
    for i, err in enumerate(errors):
        if isinstance(err, str) and err:
            for name in type(batch).row_fields:
                if name not in ("inputs", "errors"):
                    getattr(batch, name)[i] = None
            batch.errors[i] = err
