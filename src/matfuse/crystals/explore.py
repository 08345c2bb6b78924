"""Chemical-system exploration: elements in, stable (and wanted) crystals of that system out.

This is MatterGen's comparison task done with classical generators: given ``Li, Co, O``,
find stable, unique, new structures anywhere in the system, not the ground state of one
formula. The steps:

1. **Compositions** (:func:`enumerate_compositions`): every formula of the elements (and,
   by default, of their sub-systems with two or more elements) with at most
   ``max_formula_atoms`` atoms per formula unit that smact can charge-balance, ternaries
   first (:func:`is_plausible`: smact and pymatgen's common oxidation states). Elements
   themselves are the hull's references, not search targets.
2. **Proposals**: one generator of the chosen strategy per composition (seeded from the
   run's seed and the composition's position), taken in turn, round robin, so the budget
   spreads evenly; a generator whose stream runs out (substitution with no prototype of
   that stoichiometry) leaves the rotation. ``ea`` and ``bo`` learn per composition, from
   that composition's results only (:data:`generator_params` can shrink their start-up
   population so that learning begins within a small budget).
3. **Relaxations** as in :mod:`matfuse.crystals.search` (budget, failures, journal, resume,
   dask workers).
4. **Hull** of the relaxed elemental references, every phase the run found and any
   reference structures given (relaxed with the same potential): each candidate's energy
   above it, an MLIP proxy for DFT that every output names.
5. **SUN**: stable (``e_above_hull <= stability_threshold``), unique within the run, and
   novel against ``novelty_reference`` (MatterGen's ``StructureMatcher`` settings).
6. **Objective** (optional, :mod:`matfuse.crystals.objectives`): a score per unique relaxed
   candidate that orders the table; without one, the table is ordered by hull distance.
   The objective is not part of the journaled run: a rerun with another one re-ranks the
   same relaxations without relaxing anything.

>>> result = explore(["Li", "Co", "O"], budget=30, strategy="random")  # doctest: +SKIP
>>> result.table().head()  # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pymatgen.core import Composition, Element, Structure

from matfuse.crystals.generators import (
    DEFAULT_EXPLORE_STRATEGY,
    GENERATORS,
    CandidateGenerator,
    make_generator,
)
from matfuse.crystals.journal import JOURNAL_NAME, Journal, check_run
from matfuse.crystals.metrics import DEFAULT_STABILITY_THRESHOLD, novelty
from matfuse.crystals.objectives import CrystalObjective, CrystalRecord, load_crystal_objective
from matfuse.crystals.parallel import RelaxationPool, make_pool
from matfuse.crystals.search import (
    DEFAULT_RELAX_STEPS,
    CandidateResult,
    CSPResult,
    ProgressCallback,
    Proposal,
    Relaxer,
    learns_from_feedback,
    make_relaxer,
    place_on_hull,
    relax_proposals,
)
from matfuse.materials.energy import DEFAULT_FMAX
from matfuse.materials.structures import structure_hash

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_EXPLORE_MAX_ATOMS",
    "DEFAULT_MAX_FORMULA_ATOMS",
    "ExploreResult",
    "check_elements",
    "enumerate_compositions",
    "explore",
    "is_plausible",
]

#: Formula units with more atoms are not enumerated (Li7CoO6 is rarely the answer, and each
#: one more composition thins the budget of all the others).
DEFAULT_MAX_FORMULA_ATOMS = 8
#: Atoms per cell: smaller than for ``csp``, since the budget is spread over compositions.
DEFAULT_EXPLORE_MAX_ATOMS = 20


def check_elements(elements: Sequence[str] | str) -> list[str]:
    """Distinct element symbols (``"Li,Co,O"`` or a list), sorted; ``ValueError`` otherwise."""
    items = elements.replace("-", ",").split(",") if isinstance(elements, str) else elements
    symbols = [str(s).strip() for s in items if str(s).strip()]
    unknown = [s for s in symbols if not Element.is_valid_symbol(s)]
    if unknown:
        raise ValueError(f"unknown element(s): {', '.join(unknown)}")
    distinct = sorted(set(symbols))
    if len(distinct) < 2:
        raise ValueError(
            f"elements {','.join(distinct) or '(none)'}: a chemical system needs at least two"
        )
    return distinct


def is_plausible(comp: Composition, *, alloys: bool = False) -> bool:
    """Charge-balanced by smact (electronegativity-ordered) and by pymatgen's common
    oxidation states (ICSD statistics); all-metal formulas pass only with ``alloys``.

    Both tests, because smact alone admits every known oxidation state (CoO3, VO5, MnSeO),
    which would spread a small budget over formulas that no one has ever made.
    """
    import warnings

    from smact.screening import smact_validity

    if all(el.is_metal for el in comp.elements):
        return alloys
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not smact_validity(comp.reduced_formula, include_alloys=False):
            return False
        try:
            return bool(comp.oxi_state_guesses(max_sites=-50))
        except Exception:
            return False


def enumerate_compositions(
    elements: Sequence[str] | str,
    *,
    max_formula_atoms: int = DEFAULT_MAX_FORMULA_ATOMS,
    subsystems: bool = True,
    charge_balanced: bool = True,
    alloys: bool = False,
) -> list[Composition]:
    """The formulas to search: reduced integer stoichiometries that :func:`is_plausible`.

    Ordered by number of elements (the full system first), then atoms per formula unit,
    then formula. ``subsystems=False`` keeps only formulas with every element;
    ``charge_balanced=False`` keeps every stoichiometry. ``ValueError`` when none is left
    (e.g. two cations, which no anion balances).
    """
    symbols = check_elements(elements)
    smallest = 2 if subsystems else len(symbols)
    if max_formula_atoms < smallest:
        raise ValueError(f"max_formula_atoms {max_formula_atoms}: no formula has so few atoms")
    found: dict[str, Composition] = {}
    sizes = range(2, len(symbols) + 1) if subsystems else [len(symbols)]
    for size in sizes:
        for subset in itertools.combinations(symbols, size):
            top = max_formula_atoms - (size - 1)
            for counts in itertools.product(range(1, top + 1), repeat=size):
                if sum(counts) > max_formula_atoms or math.gcd(*counts) != 1:
                    continue
                comp = Composition(dict(zip(subset, counts, strict=True)))
                if charge_balanced and not is_plausible(comp, alloys=alloys):
                    continue
                found.setdefault(comp.reduced_formula, comp)
    if not found:
        raise ValueError(
            f"no {'charge-balanced ' if charge_balanced else ''}composition of "
            f"{'-'.join(symbols)} with at most {max_formula_atoms} atoms per formula unit"
            + (" (all metals: allow alloys)" if all(Element(s).is_metal for s in symbols) else "")
        )
    return sorted(found.values(), key=lambda c: (-len(c), c.num_atoms, c.reduced_formula))


def _composition_seed(seed: int, position: int) -> int:
    return int(np.random.SeedSequence([int(seed), position]).generate_state(1)[0])


def _round_robin(generators: Sequence[CandidateGenerator]) -> Iterator[Proposal]:
    """Proposals from each composition's generator in turn; a finished stream drops out."""
    streams = [(g, g.candidates(), itertools.count()) for g in generators]
    index = 0
    while streams:
        for entry in list(streams):
            generator, stream, local = entry
            candidate = next(stream, None)
            if candidate is None:
                streams.remove(entry)
                continue
            yield Proposal(index, candidate, generator, next(local))
            index += 1


@dataclass
class ExploreResult(CSPResult):
    """A chemical-system search: the candidates in table order, with SUN flags and scores."""

    elements: list[str] = field(default_factory=list)
    compositions: list[str] = field(default_factory=list)
    stability_threshold: float = DEFAULT_STABILITY_THRESHOLD
    #: candidate index -> novel against the reference set (absent: not checked)
    novel: dict[int, bool] = field(default_factory=dict)
    #: objective columns by candidate index (empty without an objective)
    scores: pd.DataFrame | None = None
    n_novelty_reference: int = 0

    def is_stable(self, c: CandidateResult) -> bool:
        return math.isfinite(c.e_above_hull) and c.e_above_hull <= self.stability_threshold

    @property
    def stable_unique(self) -> list[CandidateResult]:
        return [c for c in self.unique if self.is_stable(c)]

    @property
    def sun(self) -> list[CandidateResult]:
        """Stable, unique and novel (against the reference set, when one was given)."""
        return [c for c in self.stable_unique if self.novel.get(c.index, True)]

    def table(self) -> pd.DataFrame:
        frame = super().table()
        frame["stable"] = [c.error is None and self.is_stable(c) for c in self.candidates]
        frame["unique"] = [c.error is None and c.duplicate_of is None for c in self.candidates]
        frame["novel"] = [self.novel.get(c.index) for c in self.candidates]
        frame["sun"] = [
            bool(stable and unique and self.novel.get(c.index, True))
            for c, stable, unique in zip(
                self.candidates, frame["stable"], frame["unique"], strict=True
            )
        ]
        if self.scores is not None:
            scores = self.scores.reindex([c.index for c in self.candidates])
            for column in scores.columns:
                frame[column] = scores[column].to_numpy()
        return frame

    def counts(self) -> dict[str, int]:
        """How many relaxed, unique, stable, stable-and-unique, and SUN structures."""
        ok = [c for c in self.candidates if c.error is None]
        return {
            "relaxations": self.n_relaxations,
            "failed": self.n_failed,
            "relaxed": len(ok),
            "unique": len(self.unique),
            "stable": sum(self.is_stable(c) for c in ok),
            "stable_unique": len(self.stable_unique),
            "sun": len(self.sun),
        }


def _records(candidates: Sequence[CandidateResult]) -> list[CrystalRecord]:
    from pymatgen.symmetry.groups import SpaceGroup

    records = []
    for c in candidates:
        assert c.relaxed is not None
        number = None
        if c.spacegroup:
            try:
                number = int(SpaceGroup(c.spacegroup).int_number)
            except Exception:
                number = None
        records.append(CrystalRecord(c.relaxed, c.e_above_hull, number))
    return records


def _rank(
    ranked: list[CandidateResult], objective: CrystalObjective | None
) -> tuple[list[CandidateResult], pd.DataFrame | None]:
    """Unique relaxed candidates by score (or hull distance), then duplicates, failures."""
    failed = [c for c in ranked if c.relaxed is None]
    unique = [c for c in ranked if c.relaxed is not None and c.duplicate_of is None]
    dupes = [c for c in ranked if c.relaxed is not None and c.duplicate_of is not None]

    def by_hull(c: CandidateResult) -> tuple[float, float, int]:
        e = c.e_above_hull if math.isfinite(c.e_above_hull) else math.inf
        return e, c.energy_per_atom, c.index

    if objective is None or not unique:
        return sorted(unique, key=by_hull) + sorted(dupes, key=by_hull) + failed, None
    scores = objective.evaluate(_records(unique))
    scores.index = [c.index for c in unique]
    score = dict(zip(scores.index, scores["score"], strict=True))
    if objective.aggregate == "pareto":
        rank = dict(zip(scores.index, scores["pareto_rank"], strict=True))
        order = sorted(unique, key=lambda c: (rank[c.index], -score[c.index], *by_hull(c)))
    else:
        order = sorted(unique, key=lambda c: (-score[c.index], *by_hull(c)))
    return order + sorted(dupes, key=by_hull) + failed, scores


def explore(
    elements: Sequence[str] | str,
    *,
    strategy: str = DEFAULT_EXPLORE_STRATEGY,
    budget: int = 30,
    seed: int = 0,
    objective: CrystalObjective | Mapping[str, Any] | str | None = None,
    out_dir: str | Path | None = None,
    on_progress: ProgressCallback | None = None,
    z: tuple[int, int] = (1, 2),
    max_atoms: int = DEFAULT_EXPLORE_MAX_ATOMS,
    max_formula_atoms: int = DEFAULT_MAX_FORMULA_ATOMS,
    subsystems: bool = True,
    alloys: bool = False,
    compositions: Sequence[str | Composition] | None = None,
    references: Sequence[Structure] = (),
    novelty_reference: Sequence[Structure] | None = None,
    stability_threshold: float = DEFAULT_STABILITY_THRESHOLD,
    generator_params: Mapping[str, Any] | None = None,
    relax_steps: int = DEFAULT_RELAX_STEPS,
    fmax: float = DEFAULT_FMAX,
    relax_seconds: float | None = None,
    relaxer: Relaxer | None = None,
    potential: str | None = None,
    n_threads: int | None = 1,
    workers: int | None = 1,
    scheduler: str | None = None,
    batch_size: int | None = None,
    pool: RelaxationPool | None = None,
    write_outputs: bool = True,
) -> ExploreResult:
    """Explore the chemical system of ``elements`` with ``budget`` relaxations.

    ``compositions`` replaces the enumeration (formulas of the system). ``references`` are
    known structures: substitution sources and, relaxed, phases on the hull.
    ``novelty_reference`` is the set "new" is judged against (MatterGen's released
    structures, a database dump). The other arguments are those of
    :func:`~matfuse.crystals.search.crystal_structure_prediction`. Raises ``ValueError``
    (and :class:`~matfuse.generate.objectives.SpecError`) for bad input before relaxing.
    """
    symbols = check_elements(elements)
    if budget < 1:
        raise ValueError(f"budget must be at least 1 relaxation (got {budget})")
    spec = load_crystal_objective(objective) if objective is not None else None
    if compositions is None:
        comps = enumerate_compositions(
            symbols, max_formula_atoms=max_formula_atoms, subsystems=subsystems, alloys=alloys
        )
    else:
        comps = [Composition(c) for c in compositions]
        outside = [c.reduced_formula for c in comps if not {e.symbol for e in c} <= set(symbols)]
        if outside:
            raise ValueError(f"composition(s) {outside} are outside {'-'.join(symbols)}")
    params = dict(generator_params or {})
    generators: list[CandidateGenerator] = []
    skipped = []
    for position, comp in enumerate(comps):
        if z[0] * comp.num_atoms > max_atoms:
            skipped.append(comp.reduced_formula)
            continue
        generators.append(
            make_generator(
                strategy,
                comp,
                z=z,
                seed=_composition_seed(seed, position),
                max_atoms=max_atoms,
                references=references,
                params=params,
            )
        )
    if skipped:
        logger.info("over %d atoms per cell, not searched: %s", max_atoms, ", ".join(skipped))
    if not generators:
        raise ValueError(f"every composition has more than {max_atoms} atoms per cell")
    if relaxer is None:
        relax, potential = make_relaxer(
            potential or "chgnet", relax_steps, fmax, n_threads, relax_seconds
        )
    else:
        relax, potential = relaxer, potential or "custom"
    searched = [g.composition.reduced_formula for g in generators]
    with ExitStack() as stack:
        if pool is None:
            pool = stack.enter_context(make_pool(workers, scheduler))
        batch = int(batch_size or pool.n_workers)
        journal: Journal | None = None
        if out_dir is not None:
            run: dict[str, Any] = {
                "search": "explore",
                "elements": symbols,
                "compositions": searched,
                "z": list(z),
                "strategy": GENERATORS.resolve(strategy),
                "seed": int(seed),
                "relax_steps": int(relax_steps),
                "fmax": float(fmax),
                "max_atoms": int(max_atoms),
                "potential": potential,
                "references": sorted(structure_hash(s) for s in references),
                "generator_params": params,
            }
            if relax_seconds is not None:  # only then: older journals stay valid
                run["relax_seconds"] = float(relax_seconds)
            if batch != 1 and learns_from_feedback(generators[0]):
                run["batch_size"] = batch
            check_run(out_dir, run)
            journal = Journal(Path(out_dir) / JOURNAL_NAME)
        started = time.process_time()
        results, n_resumed = relax_proposals(
            _round_robin(generators),
            budget,
            relax,
            pool=pool,
            batch_size=batch,
            journal=journal,
            on_progress=on_progress,
        )
    ranked, refs = place_on_hull(results, symbols, references, journal, relax)
    ordered, scores = _rank(ranked, spec)
    novel: dict[int, bool] = {}
    if novelty_reference is not None:
        unique = [c for c in ordered if c.relaxed is not None and c.duplicate_of is None]
        flags = novelty([c.relaxed for c in unique if c.relaxed is not None], novelty_reference)
        novel = {c.index: bool(f) for c, f in zip(unique, flags, strict=True)}
    result = ExploreResult(
        formula="-".join(symbols),
        strategy=GENERATORS.resolve(strategy),
        seed=int(seed),
        budget=int(budget),
        potential=potential,
        candidates=ordered,
        references=refs,
        n_resumed=n_resumed,
        seconds=time.process_time() - started,
        elements=symbols,
        compositions=searched,
        stability_threshold=float(stability_threshold),
        novel=novel,
        scores=scores,
        n_novelty_reference=len(novelty_reference or ()),
    )
    logger.info("%s", result.counts())
    if out_dir is not None and write_outputs:
        from matfuse.crystals.report import write_results

        write_results(result, out_dir)
        _write_summary(result, Path(out_dir), spec)
    return result


def _write_summary(result: ExploreResult, out: Path, spec: CrystalObjective | None) -> None:
    """``explore.json``: the counts of the run and what they were measured against."""
    import json

    from matfuse.inputs.writers import write_text

    summary = {
        "elements": result.elements,
        "strategy": result.strategy,
        "seed": result.seed,
        "budget": result.budget,
        "compositions": result.compositions,
        "counts": result.counts(),
        "stability_threshold_eV_per_atom": result.stability_threshold,
        "potential": result.potential,
        "hull": f"elemental references + found phases + given references, {result.potential}"
        " energies: a proxy for a DFT hull",
        "novelty_reference_size": result.n_novelty_reference,
        "objective_terms": [t.name for t in spec.terms] if spec is not None else [],
        "objective_aggregate": spec.aggregate if spec is not None else None,
    }
    write_text(json.dumps(summary, indent=2, allow_nan=True), out / "explore.json")
