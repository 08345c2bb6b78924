"""Tiny crystals made in code; the tests never read the shared data sets."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

pytest.importorskip("pymatgen", reason="needs the materials extra: pip install -e '.[materials]'")

from pymatgen.core import Lattice, Structure  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    # CHGNet tests take a few seconds each on a CPU; `-m "not slow"` skips them
    config.addinivalue_line("markers", "slow: runs the CHGNet network (seconds on a CPU)")


def rocksalt(a: float = 5.64, cation: str = "Na", anion: str = "Cl") -> Structure:
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(a), [cation, anion], [[0, 0, 0], [0.5] * 3]
    )


def perovskite(a: float = 3.905, species: tuple[str, str, str] = ("Sr", "Ti", "O")) -> Structure:
    A, B, X = species
    coords = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    return Structure(Lattice.cubic(a), [A, B, X, X, X], coords)


def diamond(a: float = 5.43, element: str = "Si") -> Structure:
    return Structure.from_spacegroup("Fd-3m", Lattice.cubic(a), [element], [[0, 0, 0]])


def cscl(a: float = 4.12) -> Structure:
    return Structure(Lattice.cubic(a), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def bcc(a: float = 2.87, element: str = "Fe") -> Structure:
    return Structure.from_spacegroup("Im-3m", Lattice.cubic(a), [element], [[0, 0, 0]])


def wurtzite() -> Structure:
    lattice = Lattice.hexagonal(3.25, 5.21)
    return Structure.from_spacegroup(
        "P6_3mc", lattice, ["Zn", "O"], [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]]
    )


def rutile() -> Structure:
    lattice = Lattice.tetragonal(4.594, 2.959)
    return Structure.from_spacegroup(
        "P4_2/mnm", lattice, ["Ti", "O"], [[0, 0, 0], [0.305, 0.305, 0]]
    )


@pytest.fixture
def crystals() -> SimpleNamespace:
    """The builders above, for tests that need a variant (another lattice constant, element)."""
    return SimpleNamespace(
        rocksalt=rocksalt,
        perovskite=perovskite,
        diamond=diamond,
        cscl=cscl,
        bcc=bcc,
        wurtzite=wurtzite,
        rutile=rutile,
    )


@pytest.fixture
def nacl() -> Structure:
    return rocksalt()


@pytest.fixture
def srtio3() -> Structure:
    return perovskite()


@pytest.fixture
def si() -> Structure:
    return diamond()


@pytest.fixture(scope="session")
def zoo() -> list[Structure]:
    """Twelve small crystals in six space groups (225, 221, 227, 229, 186, 136).

    Shared by the whole session (building them takes a second): tests must not mutate them.
    """
    return [
        rocksalt(),
        rocksalt(4.21, "Mg", "O"),
        rocksalt(5.13, "Ca", "O"),
        perovskite(),
        perovskite(3.99, ("Ba", "Ti", "O")),
        cscl(),
        diamond(),
        diamond(5.66, "Ge"),
        bcc(),
        bcc(3.30, "Nb"),
        wurtzite(),
        rutile(),
    ]


@pytest.fixture(scope="session")
def build() -> SimpleNamespace:
    """The crystal builders above, for tests that make their own structures."""
    return SimpleNamespace(perovskite=perovskite, rocksalt=rocksalt, diamond=diamond, bcc=bcc)
