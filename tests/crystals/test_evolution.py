"""The evolutionary generator (``ea``): operators, seeding, budget, learning and resume.

A surrogate relaxer stands in for CHGNet (as in ``test_search``): it returns the structure
unchanged with a cheap pair energy, so a whole search takes seconds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("pyxtal")
pytest.importorskip("ase_ga")

from pymatgen.core import Composition, Structure  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from matfuse.crystals.evolution import EvolutionGenerator, min_distances, too_close  # noqa: E402
from matfuse.crystals.generators import GENERATORS, make_generator  # noqa: E402
from matfuse.crystals.prototypes import prototype_structure  # noqa: E402
from matfuse.crystals.search import crystal_structure_prediction  # noqa: E402
from matfuse.materials.energy import RelaxResult  # noqa: E402


def ionic_energy(structure: Structure) -> float:
    """eV/atom of point charges (+1 for the first element, -1 for the other) with a soft
    r^-9 repulsion, summed over neighbours within 6 Å: rock salt-like order wins."""
    first = sorted(el.symbol for el in structure.composition.elements)[0]
    q = np.array([1.0 if site.specie.symbol == first else -1.0 for site in structure])
    centers, points, _, d = structure.get_neighbor_list(6.0)
    e = 0.5 * np.sum(14.4 * q[centers] * q[points] / d * np.exp(-d / 4.0) + 2000.0 / d**9)
    return float(e / len(structure))


class SurrogateRelaxer:
    """No relaxation; the ionic pair energy; counts its calls on candidates."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, structure, relax_cell=True):
        if structure.composition.is_element:
            return RelaxResult(structure.copy(), 0.0, True, 1)  # elemental references
        self.calls += 1
        return RelaxResult(structure.copy(), ionic_energy(structure), True, 1)


def _search(strategy="ea", budget=8, out=None, seed=2, relaxer=None, on_progress=None):
    return crystal_structure_prediction(
        "NaCl",
        z=(2, 2),
        strategy=strategy,
        budget=budget,
        seed=seed,
        out_dir=out,
        relaxer=relaxer or SurrogateRelaxer(),
        potential="surrogate",
        write_outputs=False,
        on_progress=on_progress,
    )


def test_registered_and_built_by_make_generator():
    assert {"ea", "bo"} <= set(GENERATORS.names())
    gen = make_generator("ea", "NaCl", z=(1, 2), seed=0)
    assert isinstance(gen, EvolutionGenerator)


@pytest.mark.parametrize("operator", ["heredity", "strain", "permutation", "rattle", "soft"])
def test_operators_keep_composition_and_minimum_distances(operator):
    gen = EvolutionGenerator(
        "MgO", z=(2, 2), seed=0, population_size=3, operator_weights={operator: 1.0}
    )
    made = []
    for i, cand in enumerate(gen.candidates()):
        if i >= 3 and cand.origin.startswith(f"ea:{operator}("):
            made.append(cand.structure)
        gen.observe(i, cand, cand.structure, ionic_energy(cand.structure))
        if i == 5:
            break
    assert made, f"{operator} produced no valid offspring"
    for s in made:
        assert s.composition == Composition("Mg2O2")
        assert not too_close(s, gen.blmin)


def test_too_close_sees_periodic_images():
    blmin = min_distances(["Na", "Cl"])
    rocksalt = prototype_structure("rocksalt")
    assert not too_close(rocksalt, blmin)
    squeezed = rocksalt.copy()
    squeezed.scale_lattice(rocksalt.volume * 0.2)  # atoms pushed onto their neighbours
    assert too_close(squeezed, blmin)


def test_same_seed_same_candidates_and_exact_budget():
    relaxer = SurrogateRelaxer()
    a = _search(budget=9, relaxer=relaxer)
    assert a.n_relaxations == 9 and relaxer.calls == 9
    b = _search(budget=9)
    c = _search(budget=9, seed=3)
    for x, y in zip(a.by_evaluation(), b.by_evaluation(), strict=True):
        assert x.origin == y.origin and x.proposed == y.proposed
    assert [x.origin for x in a.by_evaluation()] != [x.origin for x in c.by_evaluation()]
    origins = [x.origin for x in a.by_evaluation()]
    assert all(o.startswith("ea:init:") for o in origins[:6])  # the first population
    assert any(not o.startswith("ea:init:") for o in origins[6:])


def emt_relax(structure, relax_cell=True):
    """A real but cheap relaxation: ASE's EMT potential, FIRE on positions and cell."""
    from ase.calculators.emt import EMT
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = EMT()
    opt = FIRE(FrechetCellFilter(atoms) if relax_cell else atoms, logfile=None)
    opt.run(fmax=0.05, steps=25)
    energy = float(atoms.get_potential_energy()) / len(atoms)
    return RelaxResult(AseAtomsAdaptor.get_structure(atoms), energy, True, opt.nsteps)


def test_offspring_improve_on_the_initial_population():
    result = crystal_structure_prediction(
        "Cu3Au",
        z=(2, 2),
        strategy="ea",
        budget=14,
        seed=2,
        relaxer=emt_relax,
        potential="EMT",
        write_outputs=False,
    )
    by_eval = result.by_evaluation()
    initial = min(c.energy_per_atom for c in by_eval[:6] if c.relaxed is not None)
    offspring = [
        c for c in by_eval[6:] if c.relaxed is not None and not c.origin.startswith("ea:random:")
    ]
    assert offspring, "no offspring at all"
    assert min(c.energy_per_atom for c in offspring) < initial - 0.01
    assert result.best.origin.startswith("ea:") and not result.best.origin.startswith("ea:init")


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("strategy", ["ea", "bo"])
def test_resume_replays_the_journal_and_continues_identically(tmp_path, monkeypatch, strategy):
    from matfuse.crystals.bayes import BayesianGenerator

    # a small pool keeps bo's three pool builds (full, cut, resumed) quick
    monkeypatch.setitem(BayesianGenerator.__init__.__kwdefaults__, "pool_size", 20)
    full = _search(strategy, budget=10, out=tmp_path / "full")

    def stop(n, budget, best, origin):
        if n == 7:
            raise Interrupted

    relaxer = SurrogateRelaxer()
    with pytest.raises(Interrupted):
        _search(strategy, budget=10, out=tmp_path / "cut", relaxer=relaxer, on_progress=stop)
    assert relaxer.calls == 7
    resumed = _search(strategy, budget=10, out=tmp_path / "cut", relaxer=relaxer)
    assert relaxer.calls == 10  # the journaled seven are not relaxed again
    assert resumed.n_resumed == 7
    for x, y in zip(full.by_evaluation(), resumed.by_evaluation(), strict=True):
        assert x.origin == y.origin and x.proposed == y.proposed
        assert math.isclose(x.energy_per_atom, y.energy_per_atom)


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="population_size"):
        EvolutionGenerator("NaCl", population_size=1)
    with pytest.raises(ValueError, match="operator weights"):
        EvolutionGenerator("NaCl", operator_weights={"crossover": 1.0})
    with pytest.raises(ValueError, match="initial"):
        EvolutionGenerator("NaCl", initial="prototypes")


@pytest.mark.slow
def test_csp_cli_runs_the_evolutionary_strategy(tmp_path):
    pytest.importorskip("chgnet")
    import pandas as pd

    from matfuse.cli import app

    out = tmp_path / "ea"
    args = ["csp", "NaCl", "--strategy", "ea", "--budget", "3", "--z", "1-2"]
    result = CliRunner().invoke(app, [*args, "--relax-steps", "10", "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "candidates.csv")
    assert len(table) == 3 and table["origin"].str.startswith("ea:").all()
    again = CliRunner().invoke(app, [*args, "--relax-steps", "10", "--out", str(out)])
    assert again.exit_code == 0 and "3 resumed" in again.output
