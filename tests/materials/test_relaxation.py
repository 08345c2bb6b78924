"""The shared FIRE loop: force, step and CPU-time limits, and the explosion checks.

ASE's EMT calculator (no network, microseconds per call) stands in for a potential.
"""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

pytest.importorskip("ase")

from ase.calculators.emt import EMT  # noqa: E402

from matfuse.materials.relaxation import exploded, fire_relax  # noqa: E402


def strained_cu(a: float = 3.9) -> Structure:
    """fcc Cu with a 8 % too large lattice constant and one atom displaced."""
    s = Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), ["Cu"], [[0, 0, 0]])
    s.translate_sites([0], [0.03, 0.0, 0.01])
    return s


def test_converges_at_the_force_threshold_and_shrinks_the_cell():
    out = fire_relax(strained_cu(), EMT(), fmax=0.01, steps=500)
    assert out.converged and not out.timed_out and 0 < out.n_steps < 500
    assert out.structure.volume < strained_cu().volume  # EMT's Cu is near a = 3.6 Å
    assert np.isfinite(out.energy_per_atom)


def test_step_limit_stops_unconverged():
    out = fire_relax(strained_cu(), EMT(), fmax=1e-6, steps=3)
    assert not out.converged and not out.timed_out and out.n_steps == 3


def test_cpu_time_limit_stops_between_steps_and_keeps_the_structure():
    free = fire_relax(strained_cu(), EMT(), fmax=1e-6, steps=200)
    limited = fire_relax(strained_cu(), EMT(), fmax=1e-6, steps=200, max_seconds=1e-9)
    assert limited.timed_out and not limited.converged
    assert limited.n_steps < free.n_steps
    assert len(limited.structure) == len(strained_cu())


def test_fixed_cell_keeps_the_lattice():
    out = fire_relax(strained_cu(), EMT(), fmax=0.01, steps=200, relax_cell=False)
    assert out.structure.volume == pytest.approx(strained_cu().volume)


def test_explosions_are_named():
    s = strained_cu()
    assert exploded(s, s, -3.0) is None
    assert "eV/atom" in (exploded(s, s, -40.0) or "")
    big = s.copy()
    big.scale_lattice(s.volume * 5)
    assert "volume changed 5-fold" in (exploded(s, big, -3.0) or "")
    two = Structure(Lattice.cubic(4.0), ["Cu", "Cu"], [[0, 0, 0], [0.05, 0, 0]])
    assert "Å apart" in (exploded(two, two, -3.0) or "")
    assert "non-finite" in (exploded(s, s, float("nan")) or "")
