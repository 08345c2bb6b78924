"""Duplicate and train/test leakage detection by canonical SMILES."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass


def find_duplicates(canonical: Sequence[str | None]) -> dict[str, list[int]]:
    """Map each canonical SMILES occurring more than once to the rows that hold it."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, smi in enumerate(canonical):
        if smi is not None:
            groups[smi].append(i)
    return {smi: rows for smi, rows in groups.items() if len(rows) > 1}


@dataclass(frozen=True)
class Leak:
    """One molecule present in both sets: a test row the model has effectively seen."""

    canonical: str
    train_rows: tuple[int, ...]
    test_rows: tuple[int, ...]


def find_leakage(
    train_canonical: Sequence[str | None], test_canonical: Sequence[str | None]
) -> list[Leak]:
    """Molecules of the test set that also occur (after canonicalisation) in training."""
    train_rows: dict[str, list[int]] = defaultdict(list)
    for i, smi in enumerate(train_canonical):
        if smi is not None:
            train_rows[smi].append(i)
    test_rows: dict[str, list[int]] = defaultdict(list)
    for i, smi in enumerate(test_canonical):
        if smi is not None and smi in train_rows:
            test_rows[smi].append(i)
    return [Leak(smi, tuple(train_rows[smi]), tuple(rows)) for smi, rows in test_rows.items()]
