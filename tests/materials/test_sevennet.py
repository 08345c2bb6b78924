"""SevenNet-0 energies and relaxations on tiny cells (skipped without ``sevenn``)."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

pytest.importorskip("sevenn", reason="needs the optional sevenn package")

from matfuse.materials import sevennet  # noqa: E402
from matfuse.materials.energy import RelaxResult  # noqa: E402
from matfuse.materials.relaxation import exploded  # noqa: E402

from .conftest import rocksalt  # noqa: E402

pytestmark = pytest.mark.slow


def isolated() -> Structure:
    return Structure(Lattice.cubic(12.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_predict_is_row_aligned_and_flags_isolated_atoms():
    energies, features, errors = sevennet.predict_sevennet([rocksalt(), isolated(), rocksalt(6.2)])
    assert features is None
    assert np.isfinite(energies[[0, 2]]).all() and np.isnan(energies[1])
    assert errors[0] is None and errors[2] is None
    assert errors[1] is not None and "no neighbour" in errors[1]
    # the equilibrium lattice (5.64 Å) binds more strongly than a 10 % expanded one
    assert energies[0] < energies[2]


def test_relaxation_lowers_the_energy_of_a_strained_cell():
    strained = rocksalt(6.0)
    start = sevennet.predict_sevennet([strained])[0][0]
    result = sevennet.relax_structure(strained, steps=200, fmax=0.05)
    assert result.error is None and result.converged
    assert result.energy_per_atom < start
    assert result.structure is not None and result.structure.volume < strained.volume


def test_time_and_step_limits_stop_without_error():
    strained = rocksalt(6.2)
    timed = sevennet.relax_structure(strained, steps=500, max_seconds=0.0)
    assert timed.error is None and not timed.converged and timed.n_steps <= 1
    stepped = sevennet.relax_structure(strained, steps=2, fmax=1e-6)
    assert stepped.error is None and not stepped.converged and stepped.n_steps <= 2


def test_failures_are_rows_not_exceptions():
    results = sevennet.relax_structures([rocksalt(), "not a structure", isolated()], steps=5)
    assert [r.error is None for r in results] == [True, False, False]
    assert all(isinstance(r, RelaxResult) for r in results)
    assert results[1].structure is None and results[2].structure is None


def test_explosion_checks():
    s = rocksalt()
    assert exploded(s, s, -3.0) is None
    assert "exploded" in (exploded(s, s, -40.0) or "")
    assert "volume" in (exploded(s, rocksalt(12.0), -3.0) or "")
    assert "non-finite" in (exploded(s, s, float("nan")) or "")


def test_relaxer_matches_the_search_contract():
    relax = sevennet.sevennet_relaxer(steps=20)
    result = relax(rocksalt(5.7), False)
    assert result.error is None
    assert result.structure is not None
    assert result.structure.volume == pytest.approx(rocksalt(5.7).volume)  # cell kept fixed


def test_sevennet_is_a_registered_potential_for_the_searches():
    from matfuse.crystals.search import POTENTIALS, make_relaxer

    assert "sevennet" in POTENTIALS.names()
    relax, label = make_relaxer("sevennet", steps=50)
    assert label == "SevenNet-0 (7net-0)"
    result = relax(rocksalt(6.0), True)
    assert result.error is None and result.structure is not None
    assert result.structure.volume < rocksalt(6.0).volume
