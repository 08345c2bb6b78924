"""What every row-aligned parse result shares: a validity mask, counts and row subsets.

Parsed molecules, compositions, structures and symmetry tables all keep one entry per input
row, with ``None`` in place of the object and a reason in ``errors`` for a row that failed;
this mixin gives them one small API.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np


class RowAligned:
    """Mixin for dataclasses whose list fields named in ``row_fields`` are row-aligned."""

    row_fields: ClassVar[tuple[str, ...]] = ()
    errors: list[str | None]

    def __len__(self) -> int:
        return len(self.errors)

    @property
    def valid(self) -> np.ndarray:
        """Boolean mask of rows that parsed."""
        return np.array([e is None for e in self.errors], dtype=bool)

    @property
    def n_invalid(self) -> int:
        return int((~self.valid).sum())

    def subset(self, index: Sequence[int] | np.ndarray) -> Self:
        """Rows ``index`` as a new record (used by splitters and cross-validation)."""
        idx = [int(i) for i in index]
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.name in self.row_fields:
                changes[f.name] = [value[i] for i in idx]
            elif isinstance(value, dict):
                changes[f.name] = dict(value)
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


def error_counts(errors: Sequence[str | None]) -> dict[str, int]:
    """How many rows failed for each kind of reason (the text before the first colon)."""
    counts: dict[str, int] = {}
    for err in errors:
        if err is not None:
            key = err.split(":")[0]
            counts[key] = counts.get(key, 0) + 1
    return counts


def is_missing(value: Any) -> bool:
    """None, NaN or a blank string: an empty cell of a table."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def first_line(exc: BaseException) -> str:
    """A one-line reason from an exception (parsers raise multi-line or empty messages)."""
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
