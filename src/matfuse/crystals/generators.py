"""Candidate generators: where unrelaxed crystal structures for a composition come from.

Every generator has one contract: built from a composition, a range of formula units per
cell ``z`` and a ``seed``, its :meth:`CandidateGenerator.candidates` yields
:class:`Candidate` objects (an unrelaxed pymatgen ``Structure`` and an ``origin`` label that
says how it was made). The stream is a pure function of the arguments: the search relies on
this to resume a killed run exactly, by skipping the candidates its journal already holds.

- ``random``: pyxtal's symmetric random structures (AIRSS / CrySPY random search): a space
  group compatible with the Wyckoff multiplicities of the composition, atoms on Wyckoff sites
  with minimum distances and a volume from atomic radii.
- ``substitution``: ion exchange on known prototypes (MatterGen's strongest classical
  baseline): the target's elements mapped onto a prototype's sites with the same
  stoichiometry, cation for cation, ranked by pymatgen's substitution probabilities and
  rescaled to pymatgen's volume estimate.
- ``mixed``: the two interleaved, substitution first.

A new generator registers in :data:`GENERATORS` and is at once a ``--strategy`` of
``matfuse csp``.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import itertools
import logging
import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np
from pymatgen.core import Composition, Element, Species, Structure

from matfuse.crystals import DEFAULT_EXPLORE_STRATEGY, DEFAULT_STRATEGY
from matfuse.crystals.prototypes import PROTOTYPES
from matfuse.registry import Registry
from matfuse.rows import first_line

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_EXPLORE_STRATEGY",
    "DEFAULT_STRATEGY",
    "DEFAULT_MAX_ATOMS",
    "GENERATORS",
    "Candidate",
    "CandidateGenerator",
    "MixedGenerator",
    "RandomGenerator",
    "SubstitutionGenerator",
    "check_charge_balance",
    "check_composition",
    "make_generator",
    "register_generator",
]

#: Cells with more atoms are refused: a CHGNet relaxation grows with the cell, and random
#: search in large cells almost never finds the ground state at a small budget.
DEFAULT_MAX_ATOMS = 40


@dataclass(frozen=True)
class Candidate:
    """An unrelaxed structure and how it was made (``"random:P2_1/c:Z=2"``...)."""

    structure: Structure
    origin: str


def check_composition(
    formula: str | Composition, z: tuple[int, int], max_atoms: int = DEFAULT_MAX_ATOMS
) -> Composition:
    """The composition of one formula unit, or ``ValueError`` saying what is wrong with it.

    The formula is taken as written (``C8`` is eight atoms, ``NaCl`` two), so that ``z``
    counts its units: ``C8`` with ``z=(1, 1)`` means exactly eight atoms per cell.
    """
    from matfuse.materials.compositions import to_composition

    comp, err = to_composition(formula)
    if comp is None:
        raise ValueError(f"formula {str(formula)!r}: {err}")
    amounts = list(comp.values())
    if any(abs(a - round(a)) > 1e-6 for a in amounts):
        raise ValueError(f"formula {str(formula)!r}: amounts must be whole numbers of atoms")
    lo, hi = z
    if not (isinstance(lo, int) and isinstance(hi, int)) or lo < 1 or hi < lo:
        raise ValueError(f"z range {lo}-{hi}: need 1 <= min <= max formula units")
    n = int(round(comp.num_atoms))
    if lo * n > max_atoms:
        raise ValueError(
            f"{comp.reduced_formula} with {n} atoms per formula unit and Z={lo} has {lo * n} "
            f"atoms per cell, over the limit of {max_atoms}"
        )
    return Composition({el: int(round(a)) for el, a in comp.items()})


class CandidateGenerator(ABC):
    """A seeded, deterministic stream of unrelaxed candidates for one composition."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def __init__(
        self,
        composition: str | Composition,
        *,
        z: tuple[int, int] = (1, 4),
        seed: int = 0,
        max_atoms: int = DEFAULT_MAX_ATOMS,
    ) -> None:
        self.composition = check_composition(composition, z, max_atoms)
        self.z = (int(z[0]), min(int(z[1]), max_atoms // int(self.composition.num_atoms)))
        self.seed = int(seed)
        self.max_atoms = int(max_atoms)

    def shared_options(self) -> dict[str, Any]:
        """``z``, ``seed`` and ``max_atoms`` as this generator holds them, for the generators
        it builds inside itself (a pool, an initial population): they must draw from the
        same cell range with the same seed, or resume and seeded results would drift."""
        return {"z": self.z, "seed": self.seed, "max_atoms": self.max_atoms}

    @property
    def atoms_range(self) -> tuple[int, int]:
        """Fewest and most atoms per cell allowed by ``z``."""
        n = int(self.composition.num_atoms)
        return self.z[0] * n, self.z[1] * n

    @abstractmethod
    def candidates(self) -> Iterator[Candidate]:
        """Yield candidates in a fixed order (the same for the same arguments and the same
        observations)."""

    def observe(
        self, index: int, candidate: Candidate, relaxed: Structure | None, energy_per_atom: float
    ) -> None:
        """Feedback from the search: candidate ``index`` relaxed to ``relaxed`` (``None``
        when it failed). Called after each relaxation, before the next candidate is drawn,
        and for journaled candidates on resume. Generators that learn from energies
        (``ea``, ``bo``) override it; the stream stays a pure function of the arguments and
        the observations, so resume is still exact."""
        return None  # the proposers that ignore feedback


# ------------------------------------------------------------------------------ random


@lru_cache(maxsize=256)
def _group(number: int) -> Any:
    from pyxtal.symmetry import Group

    return Group(number)


@lru_cache(maxsize=8192)
def _compatible(number: int, counts: tuple[int, ...]) -> bool:
    """Whether the atom counts can be placed on Wyckoff sites of the space group."""
    ok, _ = _group(number).check_compatible(list(counts))
    return bool(ok)


class RandomGenerator(CandidateGenerator):
    """Symmetric random structures from pyxtal (AIRSS / CrySPY random search).

    Candidate ``i`` draws from its own generator seeded by ``(seed, i)``: a formula-unit
    count ``Z`` uniformly in the range, then a space group uniformly among those compatible
    with the Wyckoff multiplicities (rejection sampling over 1-230, so a composition with
    few compatible groups is not biased towards low symmetry), then pyxtal's placement.
    A failed placement is retried with new draws, up to ``max_tries`` times.
    """

    name = "random"
    description = "pyxtal symmetric random structures (AIRSS / CrySPY random search)"

    def __init__(
        self,
        composition: str | Composition,
        *,
        z: tuple[int, int] = (1, 4),
        seed: int = 0,
        max_atoms: int = DEFAULT_MAX_ATOMS,
        max_tries: int = 20,
        volume_factor: float = 1.1,
    ) -> None:
        super().__init__(composition, z=z, seed=seed, max_atoms=max_atoms)
        self.max_tries = int(max_tries)
        self.volume_factor = float(volume_factor)

    def _space_group(self, rng: np.random.Generator, counts: tuple[int, ...]) -> int:
        for _ in range(2000):
            number = int(rng.integers(1, 231))
            if _compatible(number, counts):
                return number
        return 1  # P1 takes any counts

    def propose(self, index: int) -> Candidate | None:
        """Candidate ``index`` of the stream (``None`` when every try failed)."""
        from pyxtal import pyxtal

        rng = np.random.default_rng([self.seed, index])
        species = [el.symbol for el in self.composition]
        per_unit = [int(self.composition[el]) for el in self.composition]
        for _ in range(self.max_tries):
            z = int(rng.integers(self.z[0], self.z[1] + 1))
            counts = tuple(a * z for a in per_unit)
            number = self._space_group(rng, counts)
            crystal = pyxtal()
            try:
                with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                    warnings.simplefilter("ignore")
                    crystal.from_random(
                        3,
                        number,
                        species,
                        list(counts),
                        factor=self.volume_factor,
                        random_state=rng,
                    )
                    if not crystal.valid:
                        continue
                    structure = crystal.to_pymatgen()
            except Exception as exc:  # pyxtal raises assorted errors for impossible draws
                logger.debug("pyxtal failed for space group %d: %s", number, first_line(exc))
                continue
            symbol = _group(number).symbol
            return Candidate(structure, f"random:{symbol}:Z={z}")
        logger.warning("random candidate %d: no structure after %d tries", index, self.max_tries)
        return None

    def candidates(self) -> Iterator[Candidate]:
        for index in itertools.count():
            candidate = self.propose(index)
            if candidate is not None:
                yield candidate


# ------------------------------------------------------------------------ substitution


@dataclass(frozen=True)
class _Source:
    """A structure to substitute on, with the oxidation state of each of its elements."""

    label: str
    structure: Structure
    oxidation_states: dict[str, float]


def _oxidation_guess(comp: Composition) -> dict[str, float]:
    """The most likely charge-balanced oxidation states (pymatgen's ICSD statistics)."""
    if len(comp) == 1:
        return {next(iter(comp)).symbol: 0.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            guesses = comp.oxi_state_guesses(max_sites=-50)
        except Exception:
            guesses = ()
    return {k: float(v) for k, v in guesses[0].items()} if guesses else {}


def check_charge_balance(
    formula: str | Composition, z: tuple[int, int], max_atoms: int = DEFAULT_MAX_ATOMS
) -> Composition:
    """:func:`check_composition`, and ``ValueError`` unless smact can charge-balance it."""
    comp = check_composition(formula, z, max_atoms)
    if not is_charge_balanced(comp):
        raise ValueError(
            f"{comp.reduced_formula} cannot be charge-balanced (smact, common oxidation "
            "states); search it without the charge-balance requirement to try anyway"
        )
    return comp


def is_charge_balanced(comp: Composition) -> bool:
    """Whether smact finds a charge-balanced, electronegativity-ordered assignment."""
    from smact.screening import smact_validity

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bool(smact_validity(comp.reduced_formula))


@lru_cache(maxsize=1)
def _substitution_probability() -> Any:
    from pymatgen.analysis.structure_prediction.substitution_probability import (
        SubstitutionProbability,
    )

    return SubstitutionProbability()


def _pair_log_prob(target: str, t_ox: float, source: str, s_ox: float) -> float:
    """log P(source -> target) from pymatgen's data-mined substitution table (Hautier 2011)."""
    if (target == source and t_ox == s_ox) or (_sign(t_ox) == 0 and _sign(s_ox) == 0):
        return 0.0  # identity, or metal for metal: the table holds ions only
    try:
        p = _substitution_probability().cond_prob(
            Species(target, int(round(t_ox))), Species(source, int(round(s_ox)))
        )
    except Exception:
        p = 0.0
    return math.log(max(float(p), 1e-6))


def _sign(x: float) -> int:
    return 0 if abs(x) < 1e-8 else (1 if x > 0 else -1)


def _electronegativity(symbol: str) -> float:
    x = Element(symbol).X
    return float(x) if x is not None and math.isfinite(x) else 0.0


def _mapping_rank(
    mapping: dict[str, str], target_ox: dict[str, float], source_ox: dict[str, float]
) -> tuple[int, float]:
    """(sign mismatches, -log probability): lower is a better ion exchange.

    With oxidation states on both sides, a cation must go onto a cation site (anti-structure
    mappings such as Li2O on fluorite's F sites count their mismatches and come last). Without
    them (intermetallics), electronegativity order must agree instead.
    """
    if target_ox and source_ox:
        mismatches = sum(_sign(target_ox[t]) != _sign(source_ox[s]) for t, s in mapping.items())
        logp = sum(
            _pair_log_prob(t, target_ox[t], s, source_ox[s])
            for t, s in mapping.items()
            if _sign(target_ox[t]) == _sign(source_ox[s])
        )
        return mismatches, -logp
    pairs = list(mapping.items())
    inversions = sum(
        (_electronegativity(t1) - _electronegativity(t2))
        * (_electronegativity(s1) - _electronegativity(s2))
        < 0
        for (t1, s1), (t2, s2) in itertools.combinations(pairs, 2)
    )
    return inversions, 0.0


def _stoichiometric_mappings(target: Composition, source: Composition) -> list[dict[str, str]]:
    """Every target-element -> source-element bijection with equal reduced amounts."""
    t_red = target.reduced_composition
    s_red = source.reduced_composition
    t_els = [el.symbol for el in t_red]
    s_els = [el.symbol for el in s_red]
    if len(t_els) != len(s_els):
        return []
    # the same reduced formula up to a common factor
    t_amounts = {el: t_red[el] for el in t_els}
    s_amounts = {el: s_red[el] for el in s_els}
    found = []
    for perm in itertools.permutations(s_els):
        mapping = dict(zip(t_els, perm, strict=True))
        ratios = {t_amounts[t] / s_amounts[s] for t, s in mapping.items()}
        if max(ratios) - min(ratios) < 1e-8:
            found.append(mapping)
    return found


class SubstitutionGenerator(CandidateGenerator):
    """Ion exchange on prototypes: the target's ions on the sites of known structures.

    Sources are the user's ``references`` first, then the built-in prototypes
    (:data:`~matfuse.crystals.prototypes.PROTOTYPES`). For each, every mapping of target
    elements onto source elements with the same stoichiometry is ranked: first by sign
    agreement of the oxidation states (the target's from pymatgen's charge-balanced guesses,
    so every candidate is charge-balanced when the composition can be), then by pymatgen's
    substitution probability. The cell is rescaled with pymatgen's ``RLSVolumePredictor``
    (ionic radii relative to the source) and sized to the ``z`` range (primitive cell,
    conventional cell or a supercell of the primitive). Candidates identical to an earlier
    one (``StructureMatcher``, e.g. Na<->Cl swapped on rock salt) are dropped, so the stream
    is finite: its length is how many distinct ion exchanges exist. ``seed`` is recorded but
    the stream does not depend on it.
    """

    name = "substitution"
    description = "ion exchange on prototypes, charge-balanced (pymatgen substitution data)"

    def __init__(
        self,
        composition: str | Composition,
        *,
        z: tuple[int, int] = (1, 4),
        seed: int = 0,
        max_atoms: int = DEFAULT_MAX_ATOMS,
        references: Sequence[Structure] = (),
        prototypes: Iterable[str] | None = None,
        allow_anti: bool = True,
    ) -> None:
        super().__init__(composition, z=z, seed=seed, max_atoms=max_atoms)
        self.references = list(references)
        names = list(PROTOTYPES) if prototypes is None else list(prototypes)
        unknown = [n for n in names if n not in PROTOTYPES]
        if unknown:
            raise ValueError(f"unknown prototype(s) {unknown}; choose from {list(PROTOTYPES)}")
        self.prototypes = names
        self.allow_anti = allow_anti
        self._cache: list[Candidate] | None = None

    def _sources(self) -> list[_Source]:
        sources = []
        for i, ref in enumerate(self.references):
            label = f"reference{i}({ref.composition.reduced_formula})"
            sources.append(_Source(label, ref, _oxidation_guess(ref.composition)))
        for name in self.prototypes:
            p = PROTOTYPES[name]
            ox = {k: float(v) for k, v in p.oxidation_states.items()}
            sources.append(_Source(f"{name}({p.compound})", p.structure(), ox))
        return sources

    def _sized(self, structure: Structure) -> Structure | None:
        """A cell of the source with an atom count inside the ``z`` range, if there is one."""
        lo, hi = self.atoms_range
        primitive = structure.get_primitive_structure()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

            try:
                conventional = SpacegroupAnalyzer(primitive).get_conventional_standard_structure()
            except Exception:
                conventional = primitive
        for cell in (primitive, conventional):
            if lo <= len(cell) <= hi:
                return cell
        m = max(1, math.ceil(lo / len(primitive)))
        if len(primitive) * m <= hi:
            return primitive * (m, 1, 1)
        return None

    def _rescaled(self, new: Structure, source: Structure) -> Structure:
        from pymatgen.analysis.structure_prediction.volume_predictor import RLSVolumePredictor

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                volume = float(RLSVolumePredictor().predict(new, source))
            if math.isfinite(volume) and volume > 0:
                new = new.copy()
                new.scale_lattice(volume)
        except Exception as exc:  # no radii for an element: keep the source's volume
            logger.debug("volume estimate failed: %s", first_line(exc))
        return new

    def _build(self) -> list[Candidate]:
        from matfuse.crystals.matching import mattergen_matcher

        target_ox = _oxidation_guess(self.composition)
        ranked: list[tuple[tuple[int, float], int, Candidate]] = []
        for order, source in enumerate(self._sources()):
            mappings = _stoichiometric_mappings(self.composition, source.structure.composition)
            cell = self._sized(source.structure) if mappings else None
            if cell is None:
                continue
            for mapping in mappings:
                rank = _mapping_rank(mapping, target_ox, source.oxidation_states)
                if rank[0] and not self.allow_anti and target_ox:
                    continue
                new = cell.copy()
                new.replace_species({s: t for t, s in mapping.items()})
                new = self._rescaled(new, cell)
                swap = ",".join(f"{s}->{t}" for t, s in mapping.items() if s != t)
                origin = f"substitution:{source.label}" + (f":{swap}" if swap else "")
                ranked.append((rank, order, Candidate(new, origin)))
        # best mapping of every source first, then the second-best ones...: a small budget
        # sees each prototype once before it sees anti-structures
        ranked.sort(key=lambda r: (r[0][0] > 0, r[1], r[0]))
        matcher = mattergen_matcher()
        kept: list[Candidate] = []
        for _, _, cand in ranked:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                duplicate = any(matcher.fit(cand.structure, k.structure) for k in kept)
            if not duplicate:
                kept.append(cand)
        if not kept:
            logger.warning("no prototype has the stoichiometry of %s", self.composition.formula)
        return kept

    def candidates(self) -> Iterator[Candidate]:
        if self._cache is None:
            self._cache = self._build()
        yield from self._cache


# ------------------------------------------------------------------------------- mixed


class MixedGenerator(CandidateGenerator):
    """Substitution and random candidates taken in turn (substitution first).

    When the finite substitution stream runs out, random candidates fill the rest of the
    budget: the known prototypes are tried early and cheaply, random search explores.
    """

    name = "mixed"
    description = "substitution and random candidates in turn"

    def __init__(
        self,
        composition: str | Composition,
        *,
        z: tuple[int, int] = (1, 4),
        seed: int = 0,
        max_atoms: int = DEFAULT_MAX_ATOMS,
        references: Sequence[Structure] = (),
    ) -> None:
        super().__init__(composition, z=z, seed=seed, max_atoms=max_atoms)
        kw = self.shared_options()
        self.parts: list[CandidateGenerator] = [
            SubstitutionGenerator(composition, references=references, **kw),
            RandomGenerator(composition, **kw),
        ]

    def candidates(self) -> Iterator[Candidate]:
        streams = [p.candidates() for p in self.parts]
        while streams:
            for stream in list(streams):
                try:
                    yield next(stream)
                except StopIteration:
                    streams.remove(stream)


#: Every candidate generator class by name (``matfuse csp --strategy``).
GENERATORS: Registry[type[CandidateGenerator]] = Registry("crystal generator")


def register_generator(cls: type[CandidateGenerator], tags: Iterable[str]) -> None:
    """Register ``cls`` under its ``name`` with its ``description``: the class attributes
    are the one place these are written, so ``--strategy`` and ``origin`` labels agree."""
    GENERATORS.add(cls.name, cls, description=cls.description, tags=set(tags))


register_generator(RandomGenerator, {"classical", "random"})
register_generator(SubstitutionGenerator, {"classical", "prototypes"})
register_generator(MixedGenerator, {"classical", "random", "prototypes"})


def make_generator(
    strategy: str,
    composition: str | Composition,
    *,
    z: tuple[int, int] = (1, 4),
    seed: int = 0,
    max_atoms: int = DEFAULT_MAX_ATOMS,
    references: Sequence[Structure] = (),
    params: Mapping[str, Any] | None = None,
) -> CandidateGenerator:
    """The registered generator ``strategy`` for a composition (references for those that
    substitute on them, ``params`` for its own options: ``ValueError`` naming any it does
    not take, before anything is built)."""
    cls = GENERATORS.get(strategy)
    accepted = inspect.signature(cls).parameters
    kw: dict[str, Any] = {"z": z, "seed": seed, "max_atoms": max_atoms}
    if "references" in accepted:
        kw["references"] = references
    extra = dict(params or {})
    unknown = sorted(set(extra) - set(accepted))
    if unknown:
        raise ValueError(f"generator {strategy!r} takes no parameter(s) {unknown}")
    return cls(composition, **kw, **extra)


# generators that learn from the search's energies register themselves from their modules
from matfuse.crystals import bayes as _bayes  # noqa: E402, F401
from matfuse.crystals import evolution as _evolution  # noqa: E402, F401
from matfuse.crystals import qubo as _qubo  # noqa: E402, F401
from matfuse.crystals.diffusion import generator as _diffusion  # noqa: E402, F401
