"""The Bayesian-optimisation generator (``bo``): fingerprint, acquisition, choice, budget.

Resume for ``bo`` is tested with ``ea`` in ``test_evolution``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

pytest.importorskip("pyxtal")
pytest.importorskip("sklearn")

from matfuse.crystals.bayes import (  # noqa: E402
    BayesianGenerator,
    expected_improvement,
    rdf_fingerprint,
)
from matfuse.crystals.generators import make_generator  # noqa: E402
from matfuse.crystals.prototypes import prototype_structure  # noqa: E402
from matfuse.crystals.search import crystal_structure_prediction  # noqa: E402
from matfuse.materials.energy import RelaxResult  # noqa: E402


def density_energy(structure) -> float:
    """Denser is lower (a cheap surrogate that the RDF fingerprint can see)."""
    return -10.0 * len(structure) / structure.volume


def contact_energy(structure) -> float:
    """Sum of q_i q_j (charges +-1) over neighbours within 3 Å, per atom: unlike-charge
    contacts lower it. pyxtal fixes the density of its candidates, so a surrogate must see
    the geometry; this one is a smooth function of the partial RDFs."""
    first = sorted(el.symbol for el in structure.composition.elements)[0]
    q = np.array([1.0 if site.specie.symbol == first else -1.0 for site in structure])
    centers, points, _, _ = structure.get_neighbor_list(3.0)
    return float(np.sum(q[centers] * q[points]) / len(structure))


def relax(structure, relax_cell=True):
    return RelaxResult(structure.copy(), density_energy(structure), True, 1)


def test_fingerprint_is_per_cell_invariant_and_tells_structures_apart():
    rocksalt = prototype_structure("rocksalt")
    cscl = prototype_structure("cscl", {"Cs": "Na"})
    fp = rdf_fingerprint(rocksalt, ["Na", "Cl"])
    assert fp.shape == (3 * 40,)  # Cl-Cl, Cl-Na, Na-Na blocks
    assert np.allclose(fp, rdf_fingerprint(rocksalt * (2, 1, 1), ["Na", "Cl"]), atol=1e-8)
    assert not np.allclose(fp, rdf_fingerprint(cscl, ["Na", "Cl"]), atol=1e-2)


def test_expected_improvement():
    ei = expected_improvement(np.array([0.0, 0.0, -1.0]), np.array([1.0, 1e-9, 1e-9]), 0.0)
    assert ei[0] == pytest.approx(1 / np.sqrt(2 * np.pi))  # sigma * phi(0)
    assert ei[1] == pytest.approx(0.0, abs=1e-6)  # no spread, no gain
    assert ei[2] == pytest.approx(1.0)  # a sure improvement by 1


def test_bo_starts_like_random_and_then_chooses_low_energies():
    gen = BayesianGenerator("MgO", z=(1, 2), seed=4, pool_size=40, n_initial=4)
    rand = list(
        itertools.islice(make_generator("random", "MgO", z=(1, 2), seed=4).candidates(), 12)
    )
    picks = []
    for i, cand in enumerate(gen.candidates()):
        picks.append(cand)
        gen.observe(i, cand, cand.structure, contact_energy(cand.structure))
        if i == 11:
            break
    # the initial design is the random generator's stream at the same seed
    assert [c.structure for c in picks[:4]] == [c.structure for c in rand[:4]]
    assert all(c.origin.startswith("bo:ei:") for c in picks[4:])
    assert len({c.origin for c in picks}) == len(picks)  # no pool member twice
    chosen = np.mean([contact_energy(c.structure) for c in picks[4:]])
    # what random search would have relaxed next, and the pool as a whole
    assert chosen < np.mean([contact_energy(c.structure) for c in rand[4:]])
    assert chosen < np.mean([contact_energy(c.structure) for c in gen._pool or []])


def test_thompson_sampling_is_seeded():
    def origins():
        gen = BayesianGenerator("MgO", z=(1, 2), seed=1, pool_size=20, acquisition="ts")
        out = []
        for i, cand in enumerate(gen.candidates()):
            out.append(cand.origin)
            gen.observe(i, cand, cand.structure, density_energy(cand.structure))
            if i == 7:
                break
        return out

    first = origins()
    assert first == origins() and first[-1].startswith("bo:ts:")


def test_exact_budget_and_a_finite_pool(monkeypatch):
    monkeypatch.setitem(BayesianGenerator.__init__.__kwdefaults__, "pool_size", 20)
    calls = []

    def counting(structure, relax_cell=True):
        if not structure.composition.is_element:
            calls.append(1)
        return relax(structure, relax_cell)

    result = crystal_structure_prediction(
        "MgO", z=(1, 2), strategy="bo", budget=7, seed=0, relaxer=counting, potential="fake"
    )
    assert result.n_relaxations == 7 == len(calls)
    small = BayesianGenerator("MgO", z=(1, 2), seed=0, pool_size=5)
    assert len(list(small.candidates())) == 5  # the pool runs out: the stream ends


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="acquisition"):
        BayesianGenerator("NaCl", acquisition="ucb")
    with pytest.raises(ValueError, match="at least 1"):
        BayesianGenerator("NaCl", pool_size=0)
