"""Built-in structure prototypes: the known crystal families that ion substitution starts from.

Each prototype is a real compound in its experimental structure (rock salt is NaCl at
a = 5.64 Å), with the oxidation state of every element, so that a target composition can be
mapped onto it cation-for-cation and anion-for-anion. The binary and elemental prototypes are
built with ASE's ``bulk`` (which knows these lattices by name); the ones ASE does not name
(rutile, perovskite, corundum, spinel, layered ABO2) from their space group and Wyckoff
positions with pymatgen's ``Structure.from_spacegroup``. The same builders give the reference
structures of the tests and of ``benchmarks/crystal_search.py``.

>>> p = PROTOTYPES["rocksalt"]
>>> p.structure().composition.reduced_formula, p.oxidation_states
('NaCl', {'Na': 1, 'Cl': -1})
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pymatgen.core import Lattice, Structure

logger = logging.getLogger(__name__)

__all__ = ["PROTOTYPES", "Prototype", "prototype_structure"]


def _ase(formula: str, crystalstructure: str, **kw: Any) -> Structure:
    from ase.build import bulk
    from pymatgen.io.ase import AseAtomsAdaptor

    return AseAtomsAdaptor.get_structure(bulk(formula, crystalstructure, **kw))


def _spacegroup(
    symbol: str, lattice: Lattice, species: list[str], coords: list[list[float]]
) -> Structure:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Structure.from_spacegroup(symbol, lattice, species, coords)


@dataclass(frozen=True)
class Prototype:
    """A named crystal family, built as one real compound with known oxidation states."""

    name: str
    compound: str
    build: Callable[[], Structure]
    oxidation_states: dict[str, int] = field(default_factory=dict)
    description: str = ""

    def structure(self, primitive: bool = True) -> Structure:
        """The prototype compound (its primitive cell by default: fewest atoms to relax)."""
        s = self.build()
        return s.get_primitive_structure() if primitive else s


def _perovskite() -> Structure:
    coords: list[list[float]] = [
        [0, 0, 0],
        [0.5, 0.5, 0.5],
        [0.5, 0.5, 0],
        [0.5, 0, 0.5],
        [0, 0.5, 0.5],
    ]
    return Structure(Lattice.cubic(3.905), ["Sr", "Ti", "O", "O", "O"], coords)


def _spinel() -> Structure:
    # pymatgen's Fd-3m is origin choice 1: Mg on 8a (0,0,0), Al on 16d (5/8,5/8,5/8)
    return _spacegroup(
        "Fd-3m",
        Lattice.cubic(8.08),
        ["Mg", "Al", "O"],
        [[0, 0, 0], [5 / 8, 5 / 8, 5 / 8], [0.3874, 0.3874, 0.3874]],
    )


_ALL = [
    Prototype(
        "rocksalt",
        "NaCl",
        lambda: _ase("NaCl", "rocksalt", a=5.64),
        {"Na": 1, "Cl": -1},
        "Fm-3m, octahedral AB (B1)",
    ),
    Prototype(
        "cscl",
        "CsCl",
        lambda: _ase("CsCl", "cesiumchloride", a=4.12),
        {"Cs": 1, "Cl": -1},
        "Pm-3m, cubic eightfold AB (B2)",
    ),
    Prototype(
        "zincblende",
        "ZnS",
        lambda: _ase("ZnS", "zincblende", a=5.41),
        {"Zn": 2, "S": -2},
        "F-43m, tetrahedral AB (B3)",
    ),
    Prototype(
        "wurtzite",
        "ZnO",
        lambda: _ase("ZnO", "wurtzite", a=3.25, c=5.21, u=0.382),
        {"Zn": 2, "O": -2},
        "P6_3mc, hexagonal tetrahedral AB (B4)",
    ),
    Prototype(
        "fluorite",
        "CaF2",
        lambda: _ase("CaF2", "fluorite", a=5.46),
        {"Ca": 2, "F": -1},
        "Fm-3m, AB2 with cubic A (C1); also antifluorite A2B",
    ),
    Prototype(
        "rutile",
        "TiO2",
        lambda: _spacegroup(
            "P4_2/mnm",
            Lattice.tetragonal(4.594, 2.959),
            ["Ti", "O"],
            [[0, 0, 0], [0.305] * 2 + [0]],
        ),
        {"Ti": 4, "O": -2},
        "P4_2/mnm, octahedral AB2 (C4)",
    ),
    Prototype(
        "perovskite",
        "SrTiO3",
        _perovskite,
        {"Sr": 2, "Ti": 4, "O": -2},
        "Pm-3m, cubic ABX3 (E2_1)",
    ),
    Prototype(
        "corundum",
        "Al2O3",
        lambda: _spacegroup(
            "R-3c",
            Lattice.hexagonal(4.759, 12.99),
            ["Al", "O"],
            [[0, 0, 0.3523], [0.3064, 0, 0.25]],
        ),
        {"Al": 3, "O": -2},
        "R-3c, A2B3 sesquioxide (D5_1)",
    ),
    Prototype("spinel", "MgAl2O4", _spinel, {"Mg": 2, "Al": 3, "O": -2}, "Fd-3m, AB2X4 (H1_1)"),
    Prototype(
        "layered",
        "LiCoO2",
        lambda: _spacegroup(
            "R-3m",
            Lattice.hexagonal(2.816, 14.05),
            ["Li", "Co", "O"],
            [[0, 0, 0.5], [0, 0, 0], [0, 0, 0.2396]],
        ),
        {"Li": 1, "Co": 3, "O": -2},
        "R-3m, layered alpha-NaFeO2 ABO2",
    ),
    # elemental prototypes, so that substitution also proposes metals and semiconductors
    Prototype("fcc", "Cu", lambda: _ase("Cu", "fcc", a=3.61), {"Cu": 0}, "Fm-3m (A1)"),
    Prototype("bcc", "Fe", lambda: _ase("Fe", "bcc", a=2.87), {"Fe": 0}, "Im-3m (A2)"),
    Prototype("hcp", "Mg", lambda: _ase("Mg", "hcp", a=3.21, c=5.21), {"Mg": 0}, "P6_3/mmc (A3)"),
    Prototype("diamond", "Si", lambda: _ase("Si", "diamond", a=5.43), {"Si": 0}, "Fd-3m (A4)"),
]

#: The built-in prototypes by name.
PROTOTYPES: dict[str, Prototype] = {p.name: p for p in _ALL}


def prototype_structure(
    name: str, species: dict[str, str] | None = None, *, primitive: bool = True
) -> Structure:
    """A built-in prototype, optionally with its elements replaced (``{"Na": "K", "Cl": "Br"}``).

    The cell is not rescaled: this builds reference structures for matching, where
    ``StructureMatcher`` scales volumes anyway. Candidates from ion exchange are rescaled in
    :mod:`matfuse.crystals.generators`.
    """
    if name not in PROTOTYPES:
        raise ValueError(f"unknown prototype {name!r}; choose from {', '.join(PROTOTYPES)}")
    s = PROTOTYPES[name].structure(primitive=primitive)
    if species:
        s.replace_species(species)  # type: ignore[arg-type]
    return s
