"""The QUBO ordering route on tiny fcc cells with hand-made pair energies (no potential)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from matfuse.crystals import qubo
from matfuse.crystals.generators import GENERATORS

A = 3.8


def fcc_primitive(symbol: str = "Cu") -> Structure:
    return Structure(
        Lattice([[0, A / 2, A / 2], [A / 2, 0, A / 2], [A / 2, A / 2, 0]]), [symbol], [[0, 0, 0]]
    )


def pair_energy_fn(j_nn: float = 0.1, j_2nn: float = -0.03):
    """Total energy j_nn * (Au-Au nearest-neighbour bonds) + j_2nn * (second shell), per atom:
    an 'exact potential' with a known pair form."""
    d1, d2 = A / np.sqrt(2), A

    def energies(structures):
        out = []
        for s in structures:
            centers, points, _, dist = s.get_neighbor_list(d2 + 0.1)
            au = np.array([sp.symbol == "Au" for sp in s.species])
            both = au[centers] & au[points]
            n1 = np.sum(both & (np.abs(dist - d1) < 0.05)) / 2
            n2 = np.sum(both & (np.abs(dist - d2) < 0.05)) / 2
            out.append((j_nn * n1 + j_2nn * n2 - 3.0 * len(s)) / len(s))
        return np.array(out)

    return energies


def random_model(cell: Structure, seed: int) -> qubo.PairClusterExpansion:
    rng = np.random.default_rng(seed)
    model = qubo.PairClusterExpansion(qubo.pair_shells(cell, n_shells=3))
    model.ecis_ = np.concatenate([[-1.0], rng.normal(0, 0.2, size=4)])
    return model


def test_fcc_shells_have_the_textbook_coordination():
    cell = qubo.compact_supercell(fcc_primitive(), 8)
    shells = qubo.pair_shells(cell, n_shells=3)
    assert np.allclose(shells.distances, [A / np.sqrt(2), A, A * np.sqrt(1.5)], atol=1e-3)
    assert np.allclose(shells.counts.sum(axis=2), np.array([12, 6, 24])[:, None])
    assert np.allclose(shells.counts, shells.counts.transpose(0, 2, 1))


def test_compact_supercell_of_four_fcc_sites_is_the_cubic_cell():
    cell = qubo.compact_supercell(fcc_primitive(), 4)
    assert len(cell) == 4
    assert cell.volume == pytest.approx(A**3)
    assert min(cell.lattice.abc) == pytest.approx(A)


def test_fit_reproduces_a_synthetic_pair_model_exactly():
    cell = qubo.compact_supercell(fcc_primitive(), 12)
    shells = qubo.pair_shells(cell, n_shells=3)
    ecis = np.array([-3.0, 0.2, 0.05, -0.03, 0.01])
    x = qubo.random_occupancies(12, 6, 60, seed=1, spread=3)
    y = ecis[0] + qubo.PairClusterExpansion(shells).features(x) @ ecis[1:]
    model = qubo.PairClusterExpansion(shells, alpha=0).fit(x, y)
    assert np.allclose(model.ecis_, ecis, atol=1e-8)
    assert model.cv_rmse_ < 1e-10
    unseen = qubo.random_occupancies(12, 5, 10, seed=7)
    expected = ecis[0] + model.features(unseen) @ ecis[1:]
    assert np.allclose(model.predict(unseen), expected)


def test_bqm_energy_equals_the_model_on_feasible_states():
    cell = qubo.compact_supercell(fcc_primitive(), 8)
    model = random_model(cell, 0)
    bqm = model.to_bqm(3)
    for x in qubo.random_occupancies(8, 3, 10, seed=0):
        sample = {i: int(v) for i, v in enumerate(x)}
        assert bqm.energy(sample) == pytest.approx(float(model.predict(x)[0]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_annealer_finds_the_enumeration_ground_state(seed):
    cell = qubo.compact_supercell(fcc_primitive(), 12)
    model = random_model(cell, seed)
    x_best, e_best, n = qubo.enumerate_ground_state(model, 5)
    assert n == 792  # C(12, 5)
    brute = min(
        model.predict(np.array([[int(i in c) for i in range(12)]]))[0]
        for c in itertools.combinations(range(12), 5)
    )
    assert e_best == pytest.approx(brute)
    found, fraction = qubo.anneal_bqm(model.to_bqm(5), 5, num_reads=30, num_sweeps=500, seed=0)
    assert fraction > 0
    assert model.predict(found[:1])[0] == pytest.approx(e_best)


def test_composition_constraint_holds_against_a_strong_point_term():
    cell = qubo.compact_supercell(fcc_primitive(), 8)
    model = random_model(cell, 3)
    model.ecis_[1] = -5.0  # unconstrained, every site would want B
    found, fraction = qubo.anneal_bqm(model.to_bqm(2), 2, num_reads=40, num_sweeps=300, seed=1)
    assert len(found) > 0 and fraction == 1.0
    assert (found.sum(axis=1) == 2).all()


def test_anneal_ordering_finds_the_ground_state_of_the_potential():
    cell = qubo.compact_supercell(fcc_primitive(), 8)
    energy_fn = pair_energy_fn()
    result = qubo.anneal_ordering(
        cell, "Cu", "Au", 4, energy_fn=energy_fn, n_train=30, top_k=3, num_reads=30, seed=0
    )
    every = [
        qubo.decorate(cell, range(8), np.array([int(i in c) for i in range(8)]), "Cu", "Au")
        for c in itertools.combinations(range(8), 4)
    ]
    assert result.energies_per_atom[0] == pytest.approx(energy_fn(every).min())
    assert result.structures[0].composition.reduced_formula == "CuAu"
    assert result.expansion.cv_rmse_ < 1e-8  # the potential is an exact pair model
    assert list(result.energies_per_atom) == sorted(result.energies_per_atom)
    assert result.n_potential_calls == result.expansion.n_train_ + len(result.structures)


def test_anneal_ordering_is_reproducible_for_a_seed():
    cell = qubo.compact_supercell(fcc_primitive(), 12)
    kw = {"energy_fn": pair_energy_fn(0.05, 0.02), "n_train": 20, "num_reads": 10, "top_k": 4}
    one = qubo.anneal_ordering(cell, "Cu", "Au", 4, seed=5, **kw)
    two = qubo.anneal_ordering(cell, "Cu", "Au", 4, seed=5, **kw)
    assert np.array_equal(one.occupancies, two.occupancies)
    assert np.allclose(one.expansion.ecis_, two.expansion.ecis_)


def test_vacancies_remove_atoms():
    cell = qubo.compact_supercell(fcc_primitive("Li"), 4)
    s = qubo.decorate(cell, range(4), np.array([1, 0, 1, 0]), "Li", None)
    assert len(s) == 2 and s.composition.reduced_formula == "Li"


def test_bad_inputs_raise():
    cell = qubo.compact_supercell(fcc_primitive(), 4)
    with pytest.raises(ValueError, match="n_dopant"):
        qubo.anneal_ordering(cell, "Cu", "Au", 4, energy_fn=pair_energy_fn())
    with pytest.raises(ValueError, match="no Ag site"):
        qubo.anneal_ordering(cell, "Ag", "Au", 1, energy_fn=pair_energy_fn())
    with pytest.raises(ValueError, match="binary"):
        qubo.QuboGenerator("CuAuAg")


def test_qubo_generator_is_registered_and_proposes_orderings():
    assert GENERATORS.get("qubo") is qubo.QuboGenerator
    gen = qubo.QuboGenerator(
        "AuCu", z=(1, 3), seed=0, parent=fcc_primitive(), energy_fn=pair_energy_fn(), n_train=12
    )
    proposals = list(gen.candidates())
    assert proposals
    assert all(c.structure.composition.reduced_formula == "CuAu" for c in proposals)
    assert proposals[0].origin.startswith("qubo:parent:N=2")
    assert {len(c.structure) for c in proposals} <= {2, 4, 6}


@pytest.mark.parametrize("multiple", [2, 4, 6, 12])
def test_compact_supercells_are_right_handed(multiple):
    cell = qubo.compact_supercell(fcc_primitive(), multiple)
    assert len(cell) == multiple
    assert np.linalg.det(cell.lattice.matrix) > 0


def test_swap_descent_repairs_the_composition_and_never_raises_the_energy():
    cell = qubo.compact_supercell(fcc_primitive(), 12)
    model = random_model(cell, 4)
    _, h, q = model.qubo_terms()
    w = q + q.T
    for start in (np.ones(12), np.zeros(12), qubo.random_occupancies(12, 6, 1, seed=3)[0]):
        x = qubo._swap_descent(start, h, w, 6)
        assert x.sum() == 6
    start = qubo.random_occupancies(12, 6, 1, seed=3)[0]
    assert model.predict(qubo._swap_descent(start, h, w, 6))[0] <= model.predict(start)[0]


def test_unpolished_annealing_keeps_only_feasible_reads():
    cell = qubo.compact_supercell(fcc_primitive(), 12)
    model = random_model(cell, 5)
    bqm = model.to_bqm(6, lagrange=1e-3)  # too weak: most reads break the composition
    raw, fraction = qubo.anneal_bqm(bqm, 6, num_reads=20, num_sweeps=200, seed=0, polish=False)
    polished, _ = qubo.anneal_bqm(bqm, 6, num_reads=20, num_sweeps=200, seed=0)
    assert fraction < 1.0
    assert len(raw) <= round(fraction * 20)
    assert (polished.sum(axis=1) == 6).all() and len(polished) > 0


@pytest.mark.slow
def test_qubo_with_chgnet_proposes_l10_for_cuau_first():
    from matfuse.crystals.matching import mattergen_matcher

    gen = qubo.QuboGenerator("CuAu", z=(2, 2), seed=0, n_train=6, per_cell=1)
    first = next(gen.candidates())
    l10 = Structure(Lattice.tetragonal(2.7, 3.82), ["Cu", "Au"], [[0, 0, 0], [0.5] * 3])
    assert first.origin == "qubo:fcc:N=4:rank=0"
    assert mattergen_matcher().fit(first.structure, l10)


def test_make_generator_builds_qubo_for_a_binary_and_refuses_unknown_potentials():
    from matfuse.crystals.generators import make_generator

    gen = make_generator("qubo", "Cu3Au", z=(1, 2), seed=3)
    assert isinstance(gen, qubo.QuboGenerator) and gen.potential == "chgnet"
    with pytest.raises(ValueError, match="unknown potential"):
        qubo.QuboGenerator("CuAu", potential="mace")
