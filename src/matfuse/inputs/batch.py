"""The row-aligned batch: what parsing any kind of input returns, and what flows downstream.

Every parser (molecules, compositions, structures, and any kind registered later) returns a
record with one entry per input row and the same five names:

* ``inputs``  — the raw values, as given;
* ``objects`` — the parsed objects (RDKit ``Mol``, pymatgen ``Composition``/``Structure``),
  ``None`` where a row failed;
* ``keys``    — the canonical identity of each object (canonical SMILES, reduced formula,
  structure hash): one key for dedupe, encoder caching and leakage checks;
* ``errors``  — ``None`` or the reason a row cannot be used;
* ``valid`` and ``subset(index)``.

:class:`MultiBatch` holds several such batches for the same rows (a table with a ``formula``
and a ``cif`` column): a row is usable when any of its modalities is, and each encoder reads
the part it can read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np

from matfuse.rows import RowAligned

__all__ = ["Batch", "MultiBatch", "RowAligned"]


@runtime_checkable
class Batch(Protocol):
    """The protocol every parsed batch follows (see the module docstring)."""

    @property
    def inputs(self) -> list[Any]: ...

    @property
    def objects(self) -> list[Any]: ...

    @property
    def keys(self) -> list[str | None]: ...

    @property
    def errors(self) -> list[str | None]: ...

    @property
    def valid(self) -> np.ndarray: ...

    @property
    def n_invalid(self) -> int: ...

    def __len__(self) -> int: ...

    def subset(self, index: Sequence[int] | np.ndarray) -> Self: ...


@dataclass
class MultiBatch:
    """Several modalities of the same rows, keyed by input-kind name.

    The first part is the *primary* one: its raw inputs are what outputs show in the
    ``input`` column. A row's error is set only when every part failed, so a row with no
    CIF but a good formula is still predicted from its composition.
    """

    parts: dict[str, Any]

    def __post_init__(self) -> None:
        lengths = {name: len(b) for name, b in self.parts.items()}
        if not lengths:
            raise ValueError("a MultiBatch needs at least one part")
        if len(set(lengths.values())) != 1:
            raise ValueError(f"parts of a MultiBatch must have the same rows: {lengths}")

    def __len__(self) -> int:
        return len(next(iter(self.parts.values())))

    @property
    def kinds(self) -> list[str]:
        return list(self.parts)

    @property
    def primary(self) -> Any:
        return next(iter(self.parts.values()))

    @property
    def inputs(self) -> list[Any]:
        return list(self.primary.inputs)

    @property
    def objects(self) -> list[Any]:
        """Per row, the object of the first part that parsed (``None`` if none did)."""
        rows = zip(*(b.objects for b in self.parts.values()), strict=True)
        return [next((o for o in row if o is not None), None) for row in rows]

    @property
    def keys(self) -> list[str | None]:
        """One identity per row over all modalities (two rows match only if all parts do)."""
        out: list[str | None] = []
        for row in zip(*(b.keys for b in self.parts.values()), strict=True):
            out.append(None if all(k is None for k in row) else "|".join(str(k) for k in row))
        return out

    @property
    def errors(self) -> list[str | None]:
        out: list[str | None] = []
        columns = [(name, b.errors) for name, b in self.parts.items()]
        for i in range(len(self)):
            reasons = [(name, errs[i]) for name, errs in columns]
            if all(r is not None for _, r in reasons):
                out.append("; ".join(f"{name}: {r}" for name, r in reasons))
            else:
                out.append(None)
        return out

    @property
    def valid(self) -> np.ndarray:
        return np.logical_or.reduce([np.asarray(b.valid) for b in self.parts.values()])

    @property
    def n_invalid(self) -> int:
        return int((~self.valid).sum())

    def subset(self, index: Sequence[int] | np.ndarray) -> MultiBatch:
        return MultiBatch({name: b.subset(index) for name, b in self.parts.items()})
