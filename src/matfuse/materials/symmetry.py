"""Space groups and crystal systems with spglib (through pymatgen's ``SpacegroupAnalyzer``).

The tolerances decide the answer: a DFT-relaxed perovskite with a 0.01 Å tilt is
``Pm-3m`` at ``symprec=0.1`` and ``P1`` at ``symprec=1e-5``. The default ``symprec=0.1`` Å
and ``angle_tolerance=5``° are the Materials Project settings, which suit relaxed and
generated structures; pass tighter values for experimental refinements.

>>> from pymatgen.core import Lattice, Structure
>>> nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"],
...                                  [[0, 0, 0], [0.5, 0.5, 0.5]])
>>> info = get_symmetry(nacl)
>>> info.number, info.symbol, info.crystal_system
(225, 'Fm-3m', 'cubic')
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from pymatgen.symmetry.groups import PointGroup

from matfuse.materials.structures import ParsedStructures, parse_structures
from matfuse.rows import RowAligned, first_line

# spglib prints "ssm_get_exact_positions failed" to stderr while it tries tolerances; that
# is noise in a batch (real failures become row errors), so it is off unless a user set it.
os.environ.setdefault("SPGLIB_WARNING", "OFF")

DEFAULT_SYMPREC = 0.1
DEFAULT_ANGLE_TOLERANCE = 5.0

#: The seven crystal systems in order of increasing symmetry (also the one-hot order).
CRYSTAL_SYSTEMS = (
    "triclinic",
    "monoclinic",
    "orthorhombic",
    "tetragonal",
    "trigonal",
    "hexagonal",
    "cubic",
)


@dataclass(frozen=True)
class SymmetryInfo:
    """Symmetry of one structure: space group, crystal system, point group and its order."""

    number: int
    symbol: str
    crystal_system: str
    point_group: str
    n_operations: int


def get_symmetry(
    structure: Structure,
    *,
    symprec: float = DEFAULT_SYMPREC,
    angle_tolerance: float = DEFAULT_ANGLE_TOLERANCE,
) -> SymmetryInfo:
    """Analyse one structure; raises ``ValueError`` when spglib finds no symmetry at all."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sga = SpacegroupAnalyzer(structure, symprec=symprec, angle_tolerance=angle_tolerance)
        number = sga.get_space_group_number()
        if number is None or not 1 <= int(number) <= 230:
            raise ValueError(f"spglib returned no valid space group (got {number!r})")
        return SymmetryInfo(
            number=int(number),
            symbol=str(sga.get_space_group_symbol()),
            crystal_system=str(sga.get_crystal_system()),
            point_group=str(sga.get_point_group_symbol()),
            # from the point group, not the cell: a supercell keeps fewer of the operations
            n_operations=_point_group_order(str(sga.get_point_group_symbol())),
        )


@lru_cache(maxsize=64)
def _point_group_order(symbol: str) -> int:
    return int(PointGroup(symbol).order)


@dataclass
class SymmetryTable(RowAligned):
    """Row-aligned symmetry of a batch; ``info[i]`` is ``None`` exactly when ``errors[i]`` is."""

    row_fields: ClassVar[tuple[str, ...]] = ("info", "errors")

    info: list[SymmetryInfo | None]
    errors: list[str | None]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def numbers(self) -> list[int | None]:
        """Space group numbers (1–230), ``None`` for failed rows."""
        return [i.number if i is not None else None for i in self.info]

    @property
    def symbols(self) -> list[str | None]:
        return [i.symbol if i is not None else None for i in self.info]

    @property
    def crystal_systems(self) -> list[str | None]:
        return [i.crystal_system if i is not None else None for i in self.info]

    def number_array(self) -> np.ndarray:
        """Space group numbers as floats, NaN where unknown (handy as a feature or group key)."""
        return np.array([np.nan if n is None else n for n in self.numbers], dtype=float)


def analyze_symmetry(
    items: Iterable[Any] | ParsedStructures,
    *,
    symprec: float = DEFAULT_SYMPREC,
    angle_tolerance: float = DEFAULT_ANGLE_TOLERANCE,
) -> SymmetryTable:
    """Symmetry of every row; parse errors carry over and spglib failures become row errors."""
    parsed = parse_structures(items)
    info: list[SymmetryInfo | None] = []
    errors: list[str | None] = []
    for structure, err in zip(parsed.structures, parsed.errors, strict=True):
        if structure is None:
            info.append(None)
            errors.append(err)
            continue
        try:
            info.append(get_symmetry(structure, symprec=symprec, angle_tolerance=angle_tolerance))
            errors.append(None)
        except Exception as exc:  # spglib failures surface as several exception types
            info.append(None)
            errors.append(f"symmetry analysis failed: {first_line(exc)}")
    return SymmetryTable(
        info=info,
        errors=errors,
        metadata={"symprec": symprec, "angle_tolerance": angle_tolerance},
    )


def crystal_system_onehot(crystal_system: str | None) -> np.ndarray:
    """One-hot over :data:`CRYSTAL_SYSTEMS` (all zeros for an unknown system)."""
    out = np.zeros(len(CRYSTAL_SYSTEMS), dtype=np.float32)
    if crystal_system in CRYSTAL_SYSTEMS:
        out[CRYSTAL_SYSTEMS.index(crystal_system)] = 1.0
    return out
