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


#: relative volume change beyond which a relaxation summary warns (10 %)
VOLUME_CHANGE_WARNING = 0.10


@dataclass(frozen=True)
class CellChange:
    """What a relaxation did to a cell: volume, lattice and symmetry before and after.

    ``warnings`` holds one sentence per surprise: the symmetry dropped (fewer point-group
    operations, or a lower crystal system) or the volume changed by more than
    ``volume_tolerance``. Symmetry is ``None`` where spglib found none.
    """

    volume_before: float
    volume_after: float
    lattice_before: tuple[float, ...]
    lattice_after: tuple[float, ...]
    symmetry_before: SymmetryInfo | None
    symmetry_after: SymmetryInfo | None
    warnings: tuple[str, ...]

    @property
    def volume_change(self) -> float:
        """Relative change, ``after / before - 1``."""
        return self.volume_after / self.volume_before - 1.0

    @property
    def symmetry_dropped(self) -> bool:
        return any("symmetry" in w for w in self.warnings)


def space_group_label(info: SymmetryInfo | None) -> str:
    """``"Fm-3m (225)"``, or ``"-"`` without symmetry."""
    return "-" if info is None else f"{info.symbol} ({info.number})"


def lattice_label(lattice: tuple[float, ...]) -> str:
    """``"a b c (Å), α β γ (°)"`` with three and one decimals."""
    a, b, c, alpha, beta, gamma = lattice
    return f"{a:.3f} {b:.3f} {c:.3f} Å, {alpha:.1f} {beta:.1f} {gamma:.1f}°"


def cell_change(
    before: Structure,
    after: Structure,
    *,
    volume_tolerance: float = VOLUME_CHANGE_WARNING,
    symprec: float = DEFAULT_SYMPREC,
) -> CellChange:
    """Compare a cell before and after relaxation (see :class:`CellChange`).

    >>> cell_change(cubic, relaxed).warnings  # doctest: +SKIP
    ('symmetry dropped: Pm-3m (221) -> P1 (1) (cubic -> triclinic)', 'volume changed by +14.2%')
    """

    def symmetry(s: Structure) -> SymmetryInfo | None:
        try:
            return get_symmetry(s, symprec=symprec)
        except Exception:  # spglib gives up on some distorted cells: report no symmetry
            return None

    s0, s1 = symmetry(before), symmetry(after)
    notes: list[str] = []
    if s0 is not None and (
        s1 is None
        or s1.n_operations < s0.n_operations
        or CRYSTAL_SYSTEMS.index(s1.crystal_system) < CRYSTAL_SYSTEMS.index(s0.crystal_system)
    ):
        notes.append(
            f"symmetry dropped: {space_group_label(s0)} -> {space_group_label(s1)}"
            + (f" ({s0.crystal_system} -> {s1.crystal_system})" if s1 is not None else "")
        )
    v0, v1 = float(before.volume), float(after.volume)
    if abs(v1 / v0 - 1.0) > volume_tolerance:
        notes.append(f"volume changed by {v1 / v0 - 1.0:+.1%}")
    return CellChange(
        volume_before=v0,
        volume_after=v1,
        lattice_before=tuple(float(x) for x in before.lattice.parameters),
        lattice_after=tuple(float(x) for x in after.lattice.parameters),
        symmetry_before=s0,
        symmetry_after=s1,
        warnings=tuple(notes),
    )
