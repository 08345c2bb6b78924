import numpy as np
import pytest

pytest.importorskip("chgnet")

from pymatgen.core import Lattice, Structure  # noqa: E402

from matfuse.materials.energy import (  # noqa: E402
    energies_per_atom,
    energy_above_hull,
    relax_structure,
)

pytestmark = pytest.mark.slow


def _references(crystals):
    sodium = crystals.bcc(4.23, "Na")
    chlorine = Structure(
        Lattice.cubic(8.0), ["Cl", "Cl"], [[0, 0, 0], [0.25, 0, 0]]
    )  # Cl2 in a box
    return [sodium, chlorine, crystals.rocksalt()]


def test_rock_salt_is_on_the_hull_and_cscl_type_above(crystals):
    cscl_nacl = Structure(Lattice.cubic(3.4), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    result = energy_above_hull(
        [crystals.rocksalt(), cscl_nacl, "garbage", crystals.bcc()], _references(crystals)
    )
    assert result.e_above_hull[0] == pytest.approx(0.0, abs=1e-6)
    assert 0.02 < result.e_above_hull[1] < 0.5
    assert np.isnan(result.e_above_hull[2]) and result.errors[2].startswith("unrecognised")
    assert result.errors[3] == "no elemental reference for Fe: cannot build the hull"
    assert np.isfinite(result.energy_per_atom[[0, 1, 3]]).all()


def test_relaxation_recovers_the_equilibrium_cell(crystals):
    strained = crystals.rocksalt(5.64 * 1.06)
    result = relax_structure(strained, steps=100)
    assert result.error is None and result.converged and result.n_steps > 0
    assert result.structure.lattice.a == pytest.approx(5.64, abs=0.15)
    energies, finals, errors = energies_per_atom([strained, None])
    assert energies[0] > result.energy_per_atom and errors[1] == "empty structure input"
    assert finals[1] is None
