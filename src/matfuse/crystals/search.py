"""Crystal structure prediction: composition in, relaxed structures ranked by energy out.

The loop is the one of AIRSS and CrySPY's random search: propose (a registered generator),
relax with the potential (CHGNet by default; the *budget* counts these relaxations, the
expensive oracle), record. Afterwards the relaxed structures are deduplicated with
``StructureMatcher`` at MatterGen's settings, ranked by energy per atom, and placed on a
convex hull of elemental references relaxed the same way plus every phase the run found.

With ``out_dir`` the search is resumable: each relaxed candidate goes to the journal
(:mod:`matfuse.crystals.journal`) as soon as it is done, and since the candidate stream is a
pure function of the composition, ``z`` and seed, a rerun regenerates it and skips the
candidates already in the journal. A rerun with a larger budget continues the search.

Relaxations can run in parallel (``workers=N`` on a dask ``LocalCluster``, or ``scheduler``
for an existing cluster; :mod:`matfuse.crystals.parallel`). Proposals are then drawn in
batches of ``batch_size`` (default: the number of workers) and relaxed together; every
result is journaled as it completes, and the batch is shown to the generator
(:meth:`~matfuse.crystals.generators.CandidateGenerator.observe`) in index order once all
of it is done. For generators that ignore feedback (``random``, ``substitution``,
``mixed``) the batch size changes nothing; for those that learn (``ea``, ``bo``) a batch
of N is proposed knowing only the results before it, so a run with 4 workers is a
different (slightly less informed) search than a serial one, though the same as a serial
run with ``batch_size=4``. The batch size is recorded with such a run and a resume
must use the same.

>>> from matfuse.crystals.search import crystal_structure_prediction
>>> result = crystal_structure_prediction("NaCl", budget=4, strategy="mixed")  # doctest: +SKIP
>>> result.best.spacegroup  # doctest: +SKIP
'Fm-3m'
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pymatgen.core import Composition, Structure

from matfuse.crystals.generators import (
    DEFAULT_MAX_ATOMS,
    DEFAULT_STRATEGY,
    Candidate,
    CandidateGenerator,
    check_charge_balance,
    make_generator,
)
from matfuse.crystals.journal import JOURNAL_NAME, Journal, check_run
from matfuse.crystals.matching import group_duplicates, rms_distance
from matfuse.crystals.parallel import RelaxationPool, make_pool
from matfuse.crystals.references import ElementalReference, relax_elements
from matfuse.materials.energy import DEFAULT_FMAX, DEFAULT_MODEL, RelaxResult
from matfuse.materials.structures import check_structure, structure_hash
from matfuse.registry import Registry
from matfuse.rows import first_line

logger = logging.getLogger(__name__)

__all__ = [
    "POTENTIALS",
    "CSPResult",
    "CandidateResult",
    "Potential",
    "Proposal",
    "Relaxer",
    "chgnet_relaxer",
    "crystal_structure_prediction",
    "learns_from_feedback",
    "make_relaxer",
    "place_on_hull",
    "relax_job",
    "relax_proposals",
]

#: ``relaxer(structure, relax_cell) -> RelaxResult``: the oracle the budget counts.
Relaxer = Callable[[Structure, bool], RelaxResult]
#: ``on_progress(n_done, budget, best_energy_per_atom, best_origin)`` after every relaxation.
ProgressCallback = Callable[[int, int, float, str], object]
DEFAULT_RELAX_STEPS = 200
#: A relaxed structure with a lower energy than this (eV/atom) exploded: no solid binds
#: that strongly in CHGNet's MPtrj-referenced energies (the lowest are around -10).
MIN_ENERGY_PER_ATOM = -20.0


def chgnet_relaxer(
    steps: int = DEFAULT_RELAX_STEPS,
    fmax: float = DEFAULT_FMAX,
    n_threads: int | None = 1,
    max_seconds: float | None = None,
) -> Relaxer:
    """CHGNet + FIRE relaxation (:func:`matfuse.materials.energy.relax_structure`), ended
    after ``steps`` steps or ``max_seconds`` CPU seconds, whichever comes first."""
    from matfuse.materials.energy import load_chgnet, relax_structure

    def relax(structure: Structure, relax_cell: bool = True) -> RelaxResult:
        model = load_chgnet()
        return relax_structure(
            structure,
            steps=steps,
            fmax=fmax,
            relax_cell=relax_cell,
            max_seconds=max_seconds,
            model=model,
            n_threads=n_threads,
        )

    return relax


@dataclass(frozen=True)
class Potential:
    """A registered interatomic potential:
    ``factory(steps, fmax, n_threads, max_seconds) -> Relaxer`` and the ``label`` every
    table and hull names it by."""

    factory: Callable[[int, float, int | None, float | None], Relaxer]
    label: str


#: Potentials a search can relax with, by name (``potential="chgnet"``). A second one
#: (SevenNet...) registers here from its own module and is at once usable by ``csp`` and
#: ``crystal-search``; its relaxer must be picklable (cloudpickle) for parallel runs.
POTENTIALS: Registry[Potential] = Registry("potential")
POTENTIALS.add(
    "chgnet",
    Potential(chgnet_relaxer, f"CHGNet {DEFAULT_MODEL}"),
    description="CHGNet (pretrained on MPtrj) with FIRE, from the chgnet wheel",
    tags={"mlip", "magmoms"},
)


def sevennet_factory(
    steps: int, fmax: float, n_threads: int | None, max_seconds: float | None = None
) -> Relaxer:
    """SevenNet-0's relaxer, imported only when asked for (``sevenn`` is an optional extra)."""
    from matfuse.materials.sevennet import sevennet_relaxer

    return sevennet_relaxer(steps, fmax, n_threads, max_seconds)


POTENTIALS.add(
    "sevennet",
    Potential(sevennet_factory, "SevenNet-0 (7net-0)"),
    description="SevenNet-0 (7net-0) with FIRE, from the sevenn wheel (crystals extra)",
    tags={"mlip"},
)


def make_relaxer(
    potential: str = "chgnet",
    steps: int = DEFAULT_RELAX_STEPS,
    fmax: float = DEFAULT_FMAX,
    n_threads: int | None = 1,
    max_seconds: float | None = None,
) -> tuple[Relaxer, str]:
    """The relaxer of a registered potential and its label (``KeyError`` if unknown);
    ``max_seconds`` caps each relaxation's CPU time (``None``: steps and forces only)."""
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"relaxation time limit {max_seconds} s: must be positive")
    entry = POTENTIALS.get(potential)
    return entry.factory(steps, fmax, n_threads, max_seconds), entry.label


@dataclass
class CandidateResult:
    """One evaluated candidate: what was proposed, what it relaxed to, and its scores."""

    index: int
    origin: str
    proposed: Structure
    relaxed: Structure | None
    energy_per_atom: float
    converged: bool
    n_steps: int
    seconds: float
    error: str | None = None
    e_above_hull: float = float("nan")
    spacegroup: str | None = None
    rmsd: float = float("nan")
    #: index of the lower-energy candidate this one matches (``None``: unique)
    duplicate_of: int | None = None


@dataclass
class CSPResult:
    """A finished (or resumed and finished) search; ``candidates`` best first."""

    formula: str
    strategy: str
    seed: int
    budget: int
    potential: str
    candidates: list[CandidateResult]
    references: list[ElementalReference] = field(default_factory=list)
    n_resumed: int = 0
    seconds: float = 0.0

    @property
    def n_relaxations(self) -> int:
        """Relaxations done over all runs into this directory (the spent budget)."""
        return len(self.candidates)

    @property
    def n_failed(self) -> int:
        return sum(c.error is not None for c in self.candidates)

    @property
    def unique(self) -> list[CandidateResult]:
        """Relaxed, distinct candidates, best first."""
        return [c for c in self.candidates if c.error is None and c.duplicate_of is None]

    @property
    def best(self) -> CandidateResult | None:
        unique = self.unique
        return unique[0] if unique else None

    def by_evaluation(self) -> list[CandidateResult]:
        """Candidates in the order they were relaxed (for the energy-vs-evaluation plot)."""
        return sorted(self.candidates, key=lambda c: c.index)

    def table(self) -> pd.DataFrame:
        """One row per candidate, best first, failures last (never dropped)."""
        rows = []
        for rank, c in enumerate(self.candidates):
            rows.append(
                {
                    "rank": rank,
                    "cif": c.relaxed.to(fmt="cif") if c.relaxed is not None else None,
                    "energy_per_atom": c.energy_per_atom,
                    "e_above_hull": c.e_above_hull,
                    "spacegroup": c.spacegroup,
                    "formula": c.proposed.composition.reduced_formula,
                    "origin": c.origin,
                    "rmsd": c.rmsd,
                    "potential": self.potential,
                    "evaluation": c.index,
                    "n_atoms": len(c.proposed),
                    "converged": c.converged,
                    "n_steps": c.n_steps,
                    "duplicate_of": c.duplicate_of,
                    "seconds": c.seconds,
                    "error": c.error,
                }
            )
        return pd.DataFrame(rows)


# --------------------------------------------------------------------------- records


def _record(c: CandidateResult) -> dict[str, Any]:
    return {
        "kind": "candidate",
        "index": c.index,
        "origin": c.origin,
        "proposed_hash": structure_hash(c.proposed),
        "proposed": c.proposed.as_dict(),
        "relaxed": c.relaxed.as_dict() if c.relaxed is not None else None,
        "energy_per_atom": c.energy_per_atom,
        "converged": c.converged,
        "n_steps": c.n_steps,
        "seconds": c.seconds,
        "error": c.error,
    }


def _from_record(r: dict[str, Any]) -> CandidateResult:
    relaxed = Structure.from_dict(r["relaxed"]) if r.get("relaxed") else None
    energy = r.get("energy_per_atom")
    return CandidateResult(
        index=int(r["index"]),
        origin=str(r["origin"]),
        proposed=Structure.from_dict(r["proposed"]),
        relaxed=relaxed,
        energy_per_atom=float(energy) if energy is not None else float("nan"),
        converged=bool(r.get("converged")),
        n_steps=int(r.get("n_steps") or 0),
        seconds=float(r.get("seconds") or 0.0),
        error=r.get("error"),
    )


def _reference_record(ref: ElementalReference) -> dict[str, Any]:
    return {
        "kind": "reference",
        "element": ref.element,
        "structure": ref.structure.as_dict(),
        "energy_per_atom": ref.energy_per_atom,
        "reference_kind": ref.kind,
    }


# ------------------------------------------------------------------------------ steps


def evaluate_candidate(
    index: int, origin: str, proposed: Structure, relax: Relaxer
) -> CandidateResult:
    """Relax one candidate; any failure (an exception, a blow-up) is recorded, never raised."""
    start = time.process_time()
    try:
        result = relax(proposed, True)
    except Exception as exc:
        result = RelaxResult(None, float("nan"), False, 0, f"relaxation failed: {first_line(exc)}")
    error = result.error
    if result.structure is not None and error is None:
        if (
            not math.isfinite(result.energy_per_atom)
            or result.energy_per_atom < MIN_ENERGY_PER_ATOM
        ):
            error = f"relaxation exploded (energy {result.energy_per_atom:.3g} eV/atom)"
        else:
            problem = check_structure(result.structure)
            error = f"relaxation exploded: {problem}" if problem else None
    return CandidateResult(
        index=index,
        origin=origin,
        proposed=proposed,
        relaxed=result.structure if error is None else None,
        energy_per_atom=result.energy_per_atom if error is None else float("nan"),
        converged=result.converged,
        n_steps=result.n_steps,
        seconds=time.process_time() - start,
        error=error,
    )


def relax_job(job: tuple[int, str, Structure], relax: Relaxer) -> CandidateResult:
    """:func:`evaluate_candidate` of ``(index, origin, structure)`` as a pool task (module
    level, so that dask workers can unpickle it)."""
    return evaluate_candidate(job[0], job[1], job[2], relax)


@dataclass(frozen=True)
class Proposal:
    """Candidate ``index`` of a search, from ``generator`` where it is ``local_index``.

    A chemical-system search interleaves several generators, so the index that the
    generator's feedback needs (its own stream position) differs from the search's.
    """

    index: int
    candidate: Candidate
    generator: CandidateGenerator
    local_index: int

    def observe(self, relaxed: Structure | None, energy_per_atom: float) -> None:
        self.generator.observe(self.local_index, self.candidate, relaxed, energy_per_atom)


def generator_proposals(generator: CandidateGenerator) -> Iterator[Proposal]:
    """The proposals of one generator's stream (search index = stream index)."""
    for i, candidate in enumerate(generator.candidates()):
        yield Proposal(i, candidate, generator, i)


def learns_from_feedback(generator: CandidateGenerator) -> bool:
    """Whether the generator's stream depends on the results it is shown (``ea``, ``bo``)."""
    return type(generator).observe is not CandidateGenerator.observe


def _best(results: Sequence[CandidateResult]) -> tuple[float, str]:
    best_e, best_origin = math.inf, ""
    for c in results:
        if c.relaxed is not None and c.energy_per_atom < best_e:
            best_e, best_origin = c.energy_per_atom, c.origin
    return best_e, best_origin


def relax_proposals(
    proposals: Iterator[Proposal],
    budget: int,
    relax: Relaxer,
    *,
    pool: RelaxationPool,
    batch_size: int = 1,
    journal: Journal | None = None,
    on_progress: ProgressCallback | None = None,
) -> tuple[list[CandidateResult], int]:
    """Relax up to ``budget`` proposals in batches; return ``(results, n_resumed)``.

    Journaled candidates (same index) are not relaxed again but replayed to their
    generator; a journaled candidate whose origin or formula differs from the regenerated
    one stops the run (``RuntimeError``: the stream is not the one that was journaled).
    Each new result is journaled the moment it completes, in completion order; the batch
    is observed in index order after its last result, so the next batch is the same
    whatever order the workers finished in.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size {batch_size}: need at least 1")
    done: dict[int, CandidateResult] = {}
    if journal is not None:
        for record in journal.of_kind("candidate"):
            done[int(record["index"])] = _from_record(record)
    if done:
        logger.info("resuming: %d candidates already relaxed", len(done))
    results = [c for i, c in sorted(done.items()) if i < budget]
    n_resumed = len(results)
    if on_progress is not None and results:
        on_progress(len(results), budget, *_best(results))
    drawn = 0
    while drawn < budget:
        batch: list[Proposal] = []
        wanted = min(batch_size, budget - drawn)
        while len(batch) < wanted:
            proposal = next(proposals, None)
            if proposal is None:
                break
            batch.append(proposal)
        drawn += len(batch)
        new: dict[int, CandidateResult] = {}
        todo = []
        for p in batch:
            expected = done.get(p.index)
            if expected is None:
                todo.append((p.index, p.candidate.origin, p.candidate.structure))
                continue
            formula = p.candidate.structure.composition.reduced_formula
            if (
                expected.origin != p.candidate.origin
                or expected.proposed.composition.reduced_formula != formula
            ):
                raise RuntimeError(
                    f"cannot resume: candidate {p.index} is {formula} {p.candidate.origin!r} "
                    f"but the journal holds {expected.origin!r} (other library versions or "
                    "batch size?)"
                )
        with closing(pool.map_unordered(relax_job, todo, relax)) as outcomes:
            for (index, origin, proposed), result, died in outcomes:
                if result is None:
                    result = CandidateResult(
                        index, origin, proposed, None, float("nan"), False, 0, 0.0, error=died
                    )
                if journal is not None:
                    journal.append(_record(result))
                new[index] = result
                results.append(result)
                if result.error:
                    logger.info("candidate %d failed: %s", index, result.error)
                if on_progress is not None:
                    on_progress(len(results), budget, *_best(results))
        for p in batch:
            r = new.get(p.index) or done[p.index]
            p.observe(r.relaxed, r.energy_per_atom)
        if len(batch) < wanted:
            logger.info("the candidate stream ran out after %d proposals", drawn)
            break
    results.sort(key=lambda c: c.index)
    return results, n_resumed


def hull_distances(
    candidates: Sequence[CandidateResult], references: Sequence[tuple[Composition, float]]
) -> None:
    """Energy above the hull of the references plus every relaxed candidate (in place).

    The hull is built from the search's own relaxation energies rather than by calling
    :func:`matfuse.materials.energy.energy_above_hull`, which re-evaluates every structure
    with CHGNet: the same numbers for the default relaxer, but wrong for another potential.
    """
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram

    ok = [(c, c.relaxed) for c in candidates if c.relaxed is not None]
    if not ok:
        return
    elements = {el.symbol for el in ok[0][1].composition.elements}
    covered = {el.symbol for comp, _ in references for el in comp.elements if comp.is_element}
    missing = sorted(elements - covered)
    if missing:
        logger.warning("no elemental reference for %s: no hull distance", ", ".join(missing))
        return
    entries = [PDEntry(comp, e * comp.num_atoms) for comp, e in references]
    entries += [PDEntry(s.composition, c.energy_per_atom * len(s)) for c, s in ok]
    try:
        diagram = PhaseDiagram(entries)
    except Exception as exc:
        logger.warning("hull construction failed: %s", first_line(exc))
        return
    for c, s in ok:
        entry = PDEntry(s.composition, c.energy_per_atom * len(s))
        _, e_hull = diagram.get_decomp_and_e_above_hull(entry, allow_negative=True)
        c.e_above_hull = float(e_hull) if e_hull is not None else float("nan")


def annotate_candidates(candidates: list[CandidateResult]) -> list[CandidateResult]:
    """Dedupe, space group, RMSD; return the candidates ranked best first, failures last."""
    from matfuse.materials.symmetry import get_symmetry

    pairs = sorted(
        ((c, c.relaxed) for c in candidates if c.relaxed is not None),
        key=lambda p: (p[0].energy_per_atom, p[0].index),
    )
    ok = [c for c, _ in pairs]
    groups = group_duplicates([s for _, s in pairs])
    for group in groups:  # each group in energy order: the first is the representative
        for i in group[1:]:
            ok[i].duplicate_of = ok[group[0]].index
    for c, s in pairs:
        try:
            c.spacegroup = get_symmetry(s).symbol
        except Exception:
            c.spacegroup = None
        c.rmsd = rms_distance(c.proposed, s)
    failed = sorted((c for c in candidates if c.relaxed is None), key=lambda c: c.index)
    return ok + failed


def relax_references(
    elements: Sequence[str],
    journal: Journal | None,
    relax: Relaxer,
) -> list[ElementalReference]:
    done = {}
    if journal is not None:
        for r in journal.of_kind("reference"):
            s = Structure.from_dict(r["structure"])
            done[r["element"]] = ElementalReference(
                r["element"], s, float(r["energy_per_atom"]), r["reference_kind"]
            )
    todo = [el for el in elements if el not in done]
    for ref in relax_elements(todo, relax):
        done[ref.element] = ref
        if journal is not None:
            journal.append(_reference_record(ref))
    return [done[el] for el in sorted(done) if el in elements]


def place_on_hull(
    results: list[CandidateResult],
    elements: Sequence[str],
    references: Sequence[Structure],
    journal: Journal | None,
    relax: Relaxer,
) -> tuple[list[CandidateResult], list[ElementalReference]]:
    """Deduplicate and rank ``results`` and give each its energy above the hull of the
    elemental references, the relaxed ``references`` and every relaxed result."""
    refs = relax_references(elements, journal, relax)
    known = [evaluate_candidate(-1 - i, "reference", s, relax) for i, s in enumerate(references)]
    hull_refs = [(r.structure.composition, r.energy_per_atom) for r in refs]
    hull_refs += [(k.relaxed.composition, k.energy_per_atom) for k in known if k.relaxed]
    ranked = annotate_candidates(results)
    hull_distances(ranked, hull_refs)
    return ranked, refs


# ------------------------------------------------------------------------------- API


def crystal_structure_prediction(
    formula: str | Composition,
    z: tuple[int, int] = (1, 4),
    strategy: str = DEFAULT_STRATEGY,
    budget: int = 20,
    seed: int = 0,
    relax_steps: int = DEFAULT_RELAX_STEPS,
    out_dir: str | Path | None = None,
    on_progress: ProgressCallback | None = None,
    *,
    fmax: float = DEFAULT_FMAX,
    relax_seconds: float | None = None,
    require_charge_balance: bool = False,
    references: Sequence[Structure] = (),
    max_atoms: int = DEFAULT_MAX_ATOMS,
    relaxer: Relaxer | None = None,
    potential: str | None = None,
    n_threads: int | None = 1,
    write_outputs: bool = True,
    workers: int | None = 1,
    scheduler: str | None = None,
    batch_size: int | None = None,
    pool: RelaxationPool | None = None,
) -> CSPResult:
    """Search for the lowest-energy structures of ``formula`` with ``budget`` relaxations.

    ``z`` is the range of formula units per cell (of the formula as written: ``C8`` with
    ``z=(1, 1)`` is eight atoms). ``references`` are known structures: substitution sources
    and, once relaxed, phases on the hull. With ``out_dir``, the run is journaled and
    resumable, and (unless ``write_outputs=False``) ``candidates.csv``, ``cifs/`` and
    ``energy_vs_evaluation.png`` are written there (:mod:`matfuse.crystals.report`).
    ``potential`` names a registered potential (:data:`POTENTIALS`, default ``chgnet``);
    a ``relaxer`` replaces it, and ``potential`` is then only its label. Each relaxation
    ends at ``fmax``, after ``relax_steps`` FIRE steps or after ``relax_seconds`` CPU
    seconds (a candidate cut short is kept, not converged). ``require_charge_balance``
    refuses a composition smact cannot charge-balance (``ValueError``). ``workers`` > 1
    (``None``: every core) or a ``scheduler`` address relax in parallel on dask, in
    batches of ``batch_size`` (default: the number of workers; see the module notes on
    what that changes for ``ea`` and ``bo``); ``pool`` passes a ready pool instead.
    Raises ``ValueError`` for a bad formula, ``z``, strategy or potential before any
    relaxation.
    """
    if budget < 1:
        raise ValueError(f"budget must be at least 1 relaxation (got {budget})")
    if require_charge_balance:
        check_charge_balance(formula, z, max_atoms)
    generator = make_generator(
        strategy, formula, z=z, seed=seed, max_atoms=max_atoms, references=references
    )
    composition = generator.composition
    if relaxer is None:
        relax, potential = make_relaxer(
            potential or "chgnet", relax_steps, fmax, n_threads, relax_seconds
        )
    else:
        relax, potential = relaxer, potential or "custom"
    with ExitStack() as stack:
        if pool is None:
            pool = stack.enter_context(make_pool(workers, scheduler))
        batch = int(batch_size or pool.n_workers)
        journal: Journal | None = None
        if out_dir is not None:
            params: dict[str, Any] = {
                "formula": composition.formula.replace(" ", ""),
                "z": list(generator.z),
                "strategy": generator.name,
                "seed": int(seed),
                "relax_steps": int(relax_steps),
                "fmax": float(fmax),
                "max_atoms": int(max_atoms),
                "potential": potential,
                "references": sorted(structure_hash(s) for s in references),
            }
            if relax_seconds is not None:  # only then: older journals stay valid
                params["relax_seconds"] = float(relax_seconds)
            if batch != 1 and learns_from_feedback(generator):
                params["batch_size"] = batch  # the stream depends on it (module notes)
            check_run(out_dir, params)
            journal = Journal(Path(out_dir) / JOURNAL_NAME)
        started = time.process_time()
        results, n_resumed = relax_proposals(
            generator_proposals(generator),
            budget,
            relax,
            pool=pool,
            batch_size=batch,
            journal=journal,
            on_progress=on_progress,
        )

    elements = sorted(el.symbol for el in composition.elements)
    ranked, refs = place_on_hull(results, elements, references, journal, relax)
    out = CSPResult(
        formula=composition.reduced_formula,
        strategy=generator.name,
        seed=int(seed),
        budget=int(budget),
        potential=potential,
        candidates=ranked,
        references=refs,
        n_resumed=n_resumed,
        seconds=time.process_time() - started,
    )
    n_failed = out.n_failed
    logger.info(
        "%d relaxations (%d resumed, %d failed), %d unique",
        out.n_relaxations,
        out.n_resumed,
        n_failed,
        len(out.unique),
    )
    if out_dir is not None and write_outputs:
        from matfuse.crystals.report import write_results

        write_results(out, out_dir)
    return out
