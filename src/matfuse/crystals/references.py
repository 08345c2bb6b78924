"""Elemental reference states for the convex hull, relaxed with the same potential as the
candidates.

An energy above the hull only means something against references computed the same way
(:mod:`matfuse.materials.energy`), so each element's standard state is built here and
relaxed with the search's own relaxer. The structures come from ASE's table of reference
states (``ase.data.reference_states``: fcc Cu, bcc Fe, diamond Si, rhombohedral As...):

- elements that are diatomic gases or molecular solids (H, N, O, F, Cl, Br, I) are one
  dimer in a 10 Å box, relaxed at a fixed cell (the molecule, not a collapsed box);
- elements whose ASE state cannot be built without a basis (orthorhombic Ga, S...) get the
  lowest-energy of fcc, bcc, hcp and simple cubic at a volume from the atomic radius: an
  upper bound on the true elemental energy, which makes the hull distance of compounds
  containing them slightly too favourable. The table the search writes says which was used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pymatgen.core import Element, Lattice, Structure

from matfuse.materials.energy import RelaxResult

logger = logging.getLogger(__name__)

__all__ = ["DIMER_BONDS", "ElementalReference", "elemental_candidates", "relax_elements"]

#: Bond lengths (Å) of the diatomic reference molecules.
DIMER_BONDS = {"H": 0.74, "N": 1.10, "O": 1.21, "F": 1.42, "Cl": 1.99, "Br": 2.28, "I": 2.67}
_BOX = 10.0


@dataclass(frozen=True)
class ElementalReference:
    """The relaxed standard state of one element (``kind``: how it was built)."""

    element: str
    structure: Structure
    energy_per_atom: float
    kind: str


def _ase_state(symbol: str) -> Structure | None:
    from ase.build import bulk
    from pymatgen.io.ase import AseAtomsAdaptor

    try:
        return AseAtomsAdaptor.get_structure(bulk(symbol))
    except Exception:  # ASE has no buildable crystal for this element
        return None


def elemental_candidates(symbol: str) -> list[tuple[str, Structure, bool]]:
    """Structures to relax for an element's reference: ``(kind, structure, relax_cell)``."""
    if symbol in DIMER_BONDS:
        d = DIMER_BONDS[symbol] / _BOX
        coords: list[list[float]] = [[0, 0, 0], [d, 0, 0]]
        box = Structure(Lattice.cubic(_BOX), [symbol, symbol], coords)
        return [("dimer", box, False)]
    state = _ase_state(symbol)
    if state is not None:
        return [("ase", state, True)]
    from ase.build import bulk
    from pymatgen.io.ase import AseAtomsAdaptor

    r = Element(symbol).atomic_radius or 1.5
    found = []
    for kind, a in (("fcc", 2 * 2**0.5 * r), ("bcc", 4 * r / 3**0.5), ("sc", 2 * r)):
        atoms = bulk(symbol, kind, a=float(a))
        found.append((kind, AseAtomsAdaptor.get_structure(atoms), True))
    hcp = bulk(symbol, "hcp", a=float(2 * r), c=float(2 * r * 1.633))
    found.append(("hcp", AseAtomsAdaptor.get_structure(hcp), True))
    return found


def relax_elements(
    elements: Iterable[str],
    relax: Callable[[Structure, bool], RelaxResult],
) -> list[ElementalReference]:
    """Relax each element's reference state with ``relax(structure, relax_cell)``.

    An element whose every relaxation failed is left out (the hull then reports it as
    missing for the candidates that need it), with a warning.
    """
    found = []
    for symbol in sorted(set(elements)):
        best: ElementalReference | None = None
        for kind, structure, relax_cell in elemental_candidates(symbol):
            result = relax(structure, relax_cell)
            if result.structure is None:
                logger.warning("reference %s (%s) failed: %s", symbol, kind, result.error)
                continue
            if best is None or result.energy_per_atom < best.energy_per_atom:
                best = ElementalReference(symbol, result.structure, result.energy_per_atom, kind)
        if best is None:
            logger.warning("no elemental reference for %s", symbol)
        else:
            found.append(best)
    return found
