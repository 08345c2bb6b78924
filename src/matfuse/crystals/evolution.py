"""Evolutionary crystal structure search (the USPEX family) as a candidate generator.

Why a generator and not a loop of its own: the search (:mod:`matfuse.crystals.search`)
already owns the budget, the relaxations, the journal and resume. The EA only has to say
which structure to relax next, given the relaxed energies it has been shown through
:meth:`~matfuse.crystals.generators.CandidateGenerator.observe`. Since every choice is a
pure function of the seed and of those observations, a resumed run that replays the journal
proposes exactly the same candidates.

The scheme is steady-state, as suits a small budget: a first population from the ``random``
proposer (pyxtal; ``initial="mixed"`` adds the substitution prototypes first), then each
new candidate is one offspring of parents drawn by tournament from the lowest-energy
distinct relaxed structures found so far. Fitness is the relaxed energy per atom.
The variation operators are ASE's genetic-algorithm ones (``ase_ga``, the Lyakhov-Oganov
bulk operators), reused rather than rewritten:

- ``heredity``: cut-and-splice of two parents' slabs along a random plane, the composition
  repaired by adding or removing atoms of each species at random (``CutAndSplicePairing``);
- ``strain``: a random symmetric strain of the lattice (``StrainMutation``);
- ``permutation``: swaps of atoms of different species (``PermutationMutation``);
- ``rattle``: random displacements of a fraction of the atoms (``RattleMutation``);
- ``soft``: a displacement along the softest vibrational mode of a bond-valence pair model
  (``SoftMutation``), USPEX's soft mutation.

Every offspring is checked for the composition and for minimum interatomic distances
(a fraction of the sum of covalent radii, periodic images included) and is dropped, and
another drawn, when it fails or when it matches (``StructureMatcher``) a structure already
proposed or relaxed. When no valid offspring comes after ``max_tries`` draws, a fresh random
structure keeps the stream going.

>>> gen = EvolutionGenerator("NaCl", z=(1, 2), seed=0)  # doctest: +SKIP
>>> first = next(gen.candidates()).origin  # doctest: +SKIP
'ea:init:random:...'
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymatgen.core import Composition, Element, Structure

from matfuse.crystals.generators import (
    DEFAULT_MAX_ATOMS,
    Candidate,
    CandidateGenerator,
    MixedGenerator,
    RandomGenerator,
    register_generator,
)
from matfuse.rows import first_line

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_OPERATOR_WEIGHTS",
    "EvolutionGenerator",
    "min_distances",
    "too_close",
]

#: How often each operator is drawn (renormalised over those that apply: no permutation
#: for an element, no heredity without two parents of the same size).
DEFAULT_OPERATOR_WEIGHTS: dict[str, float] = {
    "heredity": 0.5,
    "strain": 0.2,
    "permutation": 0.1,
    "rattle": 0.1,
    "soft": 0.1,
}
#: Offspring closer than this fraction of the summed covalent radii are rejected (ASE GA's
#: usual 0.7: ionic bonds are shorter than covalent sums for small cations only rarely).
DEFAULT_DISTANCE_RATIO = 0.7


def min_distances(
    elements: Sequence[str], ratio: float = DEFAULT_DISTANCE_RATIO
) -> dict[tuple[int, int], float]:
    """Shortest allowed distance (Å) for every pair of atomic numbers (``ase_ga``'s table)."""
    from ase_ga.utilities import closest_distances_generator

    numbers = sorted({Element(e).Z for e in elements})
    table = closest_distances_generator(numbers, ratio)
    return {(int(a), int(b)): float(d) for (a, b), d in table.items()}


def too_close(structure: Structure, blmin: Mapping[tuple[int, int], float]) -> bool:
    """Whether two atoms (periodic images and an atom's own images included) are closer than
    ``blmin`` allows. pymatgen's neighbour list is used rather than a minimum-image
    distance matrix, which misses images in small or skewed cells."""
    cutoff = max(blmin.values())
    centers, points, _, distances = structure.get_neighbor_list(cutoff)
    if len(distances) == 0:
        return False
    z = np.array([site.specie.Z for site in structure])
    for i, j, d in zip(centers, points, distances, strict=True):
        if d < blmin.get((int(z[i]), int(z[j])), 0.0) - 1e-9:
            return True
    return False


@dataclass
class _Member:
    """A relaxed structure of the run: an eligible parent."""

    index: int
    structure: Structure
    energy: float


def _stable_copy(structure: Structure) -> Structure:
    """The structure as the journal will give it back (``as_dict`` round trip), so that a
    live run and a resumed one feed the operators bit-identical coordinates."""
    return Structure.from_dict(structure.as_dict())


def _sorted(structure: Structure) -> Structure:
    """Sites ordered by atomic number: ASE's pairing needs equal ``numbers`` arrays."""
    return structure.get_sorted_structure(key=lambda site: site.specie.Z)


class EvolutionGenerator(CandidateGenerator):
    """Steady-state evolutionary search (USPEX family) over relaxed energies per atom.

    ``population_size`` random structures start the run; afterwards every candidate is an
    offspring of parents chosen by ``tournament_size``-tournaments among the
    ``population_size`` lowest-energy distinct relaxed structures. ``operator_weights``
    sets how often each operator of :data:`DEFAULT_OPERATOR_WEIGHTS` is used.
    """

    name = "ea"
    description = "evolutionary search: heredity, strain, permutation, soft mutation (USPEX)"

    def __init__(
        self,
        composition: str | Composition,
        *,
        z: tuple[int, int] = (1, 4),
        seed: int = 0,
        max_atoms: int = DEFAULT_MAX_ATOMS,
        references: Sequence[Structure] = (),
        population_size: int = 6,
        tournament_size: int = 2,
        operator_weights: Mapping[str, float] | None = None,
        initial: str = "random",
        distance_ratio: float = DEFAULT_DISTANCE_RATIO,
        max_tries: int = 30,
    ) -> None:
        super().__init__(composition, z=z, seed=seed, max_atoms=max_atoms)
        if population_size < 2:
            raise ValueError(f"population_size {population_size}: need at least 2 parents")
        if initial not in ("random", "mixed"):
            raise ValueError(f"initial {initial!r}: choose 'random' or 'mixed'")
        weights = dict(DEFAULT_OPERATOR_WEIGHTS if operator_weights is None else operator_weights)
        unknown = sorted(set(weights) - set(DEFAULT_OPERATOR_WEIGHTS))
        if unknown or not any(w > 0 for w in weights.values()):
            raise ValueError(
                f"operator weights {weights}: need positive weights for some of "
                f"{list(DEFAULT_OPERATOR_WEIGHTS)}"
            )
        self.references = list(references)
        self.population_size = int(population_size)
        self.tournament_size = int(tournament_size)
        self.operator_weights = weights
        self.initial = initial
        self.distance_ratio = float(distance_ratio)
        self.max_tries = int(max_tries)
        elements = [el.symbol for el in self.composition]
        self.blmin = min_distances(elements, self.distance_ratio)
        self._members: list[_Member] = []
        self._proposed: list[Structure] = []
        self._n_observed = 0
        self._soft: Any = None

    # ------------------------------------------------------------------ feedback
    def observe(
        self, index: int, candidate: Candidate, relaxed: Structure | None, energy_per_atom: float
    ) -> None:
        """Add a relaxed candidate to the parents; a failed relaxation adds nothing."""
        self._n_observed += 1
        if relaxed is None or not np.isfinite(energy_per_atom):
            return
        member = _Member(index, _stable_copy(relaxed), float(energy_per_atom))
        duplicate = self._duplicate_member(member)
        if duplicate is None:
            self._members.append(member)
        elif member.energy < duplicate.energy:  # keep the lower-energy copy only
            self._members[self._members.index(duplicate)] = member

    def _duplicate_member(self, member: _Member) -> _Member | None:
        from matfuse.crystals.matching import mattergen_matcher

        matcher = mattergen_matcher()
        for other in self._members:
            # the same structure relaxes to (nearly) the same energy: compare only those
            if abs(other.energy - member.energy) > 0.05:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if matcher.fit(other.structure, member.structure):
                    return other
        return None

    @property
    def population(self) -> list[_Member]:
        """The current parents: the lowest-energy distinct relaxed structures."""
        ranked = sorted(self._members, key=lambda m: (m.energy, m.index))
        return ranked[: self.population_size]

    # ------------------------------------------------------------------ stream
    def candidates(self) -> Iterator[Candidate]:
        kw = self.shared_options()
        initial: CandidateGenerator
        if self.initial == "mixed":
            initial = MixedGenerator(self.composition, references=self.references, **kw)
        else:
            initial = RandomGenerator(self.composition, **kw)
        seeds = initial.candidates()
        # a separate random stream for fall-backs, so they never repeat the initial ones
        fallback = RandomGenerator(self.composition, **{**kw, "seed": self.seed + 7919})
        fallbacks = fallback.candidates()
        for count in itertools.count():
            if count < self.population_size or len(self._members) < 2:
                source, prefix = seeds, "ea:init:"
                offspring = None
            else:
                offspring = self._offspring(count)
                source, prefix = fallbacks, "ea:random:"
            if offspring is None:
                seed_candidate = next(source, None)
                if seed_candidate is None:  # the substitution part of "mixed" ran out
                    seeds, source = fallbacks, fallbacks
                    seed_candidate = next(source, None)
                if seed_candidate is None:
                    return
                offspring = Candidate(seed_candidate.structure, prefix + seed_candidate.origin)
            self._proposed.append(offspring.structure)
            yield offspring

    # --------------------------------------------------------------- offspring
    def _rng(self, count: int) -> np.random.RandomState:
        # ASE's operators call the legacy RandomState API (randint, random)
        state = np.random.SeedSequence([self.seed, count]).generate_state(1)[0]
        return np.random.RandomState(int(state))

    def _tournament(self, rng: np.random.RandomState, pool: Sequence[_Member]) -> _Member:
        k = min(self.tournament_size, len(pool))
        picks = rng.choice(len(pool), size=k, replace=False)
        return min((pool[int(i)] for i in picks), key=lambda m: (m.energy, m.index))

    def _operator(self, rng: np.random.RandomState, can_pair: bool) -> str:
        usable = {
            name: w
            for name, w in self.operator_weights.items()
            if w > 0
            and (name != "heredity" or can_pair)
            and (name != "permutation" or len(self.composition) > 1)
        }
        if not usable:
            usable = {"rattle": 1.0}
        names = sorted(usable)
        p = np.array([usable[n] for n in names], dtype=float)
        return names[int(rng.choice(len(names), p=p / p.sum()))]

    def _offspring(self, count: int) -> Candidate | None:
        rng = self._rng(count)
        population = self.population
        for _ in range(self.max_tries):
            first = self._tournament(rng, population)
            mates = [
                m for m in population if m is not first and len(m.structure) == len(first.structure)
            ]
            op = self._operator(rng, can_pair=bool(mates))
            parents = [first] if op != "heredity" else [first, self._tournament(rng, mates)]
            try:
                with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                    warnings.simplefilter("ignore")
                    child = self._apply(op, parents, rng, population)
            except Exception as exc:  # an operator that cannot work on these parents
                logger.debug("ea %s failed: %s", op, first_line(exc))
                child = None
            if child is None or not self._valid(child):
                continue
            label = ",".join(str(p.index) for p in parents)
            return Candidate(child, f"ea:{op}({label})")
        logger.info(
            "ea: no valid offspring after %d tries; a random structure instead", self.max_tries
        )
        return None

    def _apply(
        self,
        op: str,
        parents: Sequence[_Member],
        rng: np.random.RandomState,
        population: Sequence[_Member],
    ) -> Structure | None:
        from ase import Atoms
        from ase_ga.standardmutations import PermutationMutation, RattleMutation, StrainMutation
        from pymatgen.io.ase import AseAtomsAdaptor

        atoms = []
        for p in parents:
            a = AseAtomsAdaptor.get_atoms(_sorted(p.structure))
            a.info = {"confid": p.index, "key_value_pairs": {}, "data": {}}
            atoms.append(a)
        n = len(atoms[0])
        bounds = _cell_bounds()
        operator: Any
        if op == "heredity":
            from ase_ga.cutandsplicepairing import CutAndSplicePairing

            operator = CutAndSplicePairing(
                Atoms(pbc=True),
                n,
                self.blmin,
                number_of_variable_cell_vectors=3,
                p1=1.0,
                p2=0.05,
                minfrac=0.15,
                cellbounds=bounds,
                rng=rng,
            )
            # the child's volume follows the best parents' (USPEX's adaptive volume)
            same = [
                AseAtomsAdaptor.get_atoms(m.structure) for m in population if len(m.structure) == n
            ]
            operator.update_scaling_volume(same)
        elif op == "strain":
            operator = StrainMutation(self.blmin, cellbounds=bounds, stddev=0.2, rng=rng)
        elif op == "permutation":
            operator = PermutationMutation(n, probability=0.33, blmin=self.blmin, rng=rng)
        elif op == "rattle":
            operator = RattleMutation(self.blmin, n, rattle_strength=0.8, rattle_prop=0.4, rng=rng)
        elif op == "soft":
            operator = self._soft_mutation()
        else:  # pragma: no cover - _operator only draws known names
            raise ValueError(op)
        child, _ = operator.get_new_individual(atoms)
        if child is None:
            return None
        return AseAtomsAdaptor.get_structure(child)

    def _soft_mutation(self) -> Any:
        # one instance per run: it remembers which modes of which parent it has used
        if self._soft is None:
            from ase_ga.soft_mutation import SoftMutation

            self._soft = SoftMutation(self.blmin, bounds=[0.5, 2.0], used_modes_file=None)
        return self._soft

    def _valid(self, child: Structure) -> bool:
        """Right composition and atom count, no atoms too close, not seen before."""
        from matfuse.crystals.matching import mattergen_matcher

        lo, hi = self.atoms_range
        if not lo <= len(child) <= hi:
            return False
        if child.composition.reduced_composition != self.composition.reduced_composition:
            return False
        if child.volume <= 0 or too_close(child, self.blmin):
            return False
        matcher = mattergen_matcher()
        seen = [*self._proposed, *(m.structure for m in self._members)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return not any(matcher.fit(child, s) for s in seen)


def _cell_bounds() -> Any:
    """Lattice angles 30-150° and lengths 1.5-40 Å: beyond them a cell is a sliver."""
    from ase_ga.utilities import CellBounds

    return CellBounds(
        bounds={
            "phi": [30, 150],
            "chi": [30, 150],
            "psi": [30, 150],
            "a": [1.5, 40],
            "b": [1.5, 40],
            "c": [1.5, 40],
        }
    )


register_generator(EvolutionGenerator, {"evolutionary", "feedback"})
