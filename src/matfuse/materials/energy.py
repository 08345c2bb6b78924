"""Energies from the pretrained CHGNet potential: relaxation, energy per atom, hull distance.

CHGNet (Deng et al. 2023) ships its weights inside the ``chgnet`` wheel, so everything here
runs offline. It was trained on MPtrj (Materials Project relaxations with the MP2020
GGA/GGA+U mixing), so its energies are comparable to each other — which is what the hull
needs — but not to raw DFT totals from another code. Energy above hull is therefore
computed against reference structures evaluated *the same way* (same model, same relax
setting), never against tabulated DFT energies.

Crystal generation (later) uses these to score candidates: relax, then ask how far above
the convex hull of known phases the candidate lies.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pymatgen.core import Composition, Structure

from matfuse.materials.structures import ParsedStructures, parse_structures
from matfuse.models.threads import torch_threads
from matfuse.rows import first_line

if TYPE_CHECKING:
    pass

DEFAULT_MODEL = "0.3.0"
#: Threads for CHGNet by default (see :func:`torch_threads`).
DEFAULT_THREADS = 1
#: Structures per CHGNet forward pass (CHGNet's default; 8 to 64 ran equally fast on
#: perov_5 with one thread).
DEFAULT_BATCH_SIZE = 16
#: Force threshold (eV/Å) of a relaxation, CHGNet's default.
DEFAULT_FMAX = 0.1
DEFAULT_STEPS = 500
#: An atom with no neighbour within CHGNet's 6 Å graph cutoff gets no message passing, so
#: its energy and embedding are meaningless: such rows are errors, not warnings.
ISOLATED_ATOMS: Literal["ignore", "warn", "error"] = "error"


@lru_cache(maxsize=4)
def load_chgnet(model_name: str = DEFAULT_MODEL, device: str = "cpu") -> Any:
    """The pretrained CHGNet from the ``chgnet`` package (cached; ~3 s on first use)."""
    from chgnet.model import CHGNet

    # CHGNet prints a banner on construction even with verbose=False
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        model = CHGNet.load(model_name=model_name, use_device=device, verbose=False)
    model.eval()
    return model


def predict_chgnet(
    structures: Sequence[Structure],
    *,
    model: Any = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    crystal_features: bool = False,
    n_threads: int | None = DEFAULT_THREADS,
) -> tuple[np.ndarray, np.ndarray | None, list[str | None]]:
    """Energy per atom (eV/atom) and optionally the 64-d crystal feature of each structure.

    Batches are predicted together; when a batch fails (e.g. one structure has an atom
    with no neighbour inside CHGNet's 6 Å graph cutoff), its structures are retried one
    by one so that only the culprit gets an error. Returns ``(energies, features, errors)``
    with NaN energies/feature rows where ``errors[i]`` is set. ``n_threads``: see
    :func:`torch_threads`.
    """
    model = model if model is not None else load_chgnet()
    # a relaxation elsewhere may have left the shared model set to "warn"
    model.graph_converter.set_isolated_atom_response(ISOLATED_ATOMS)
    n = len(structures)
    energies = np.full(n, np.nan, dtype=np.float64)
    feats: np.ndarray | None = None
    errors: list[str | None] = [None] * n

    def run(idx: list[int]) -> None:
        nonlocal feats
        with warnings.catch_warnings(), torch_threads(n_threads):
            warnings.simplefilter("ignore")
            out = model.predict_structure(
                [structures[i] for i in idx],
                task="e",
                return_crystal_feas=crystal_features,
                batch_size=max(1, len(idx)),
            )
        out = out if isinstance(out, list) else [out]
        for i, pred in zip(idx, out, strict=True):
            energies[i] = float(np.asarray(pred["e"]).reshape(-1)[0])
            if crystal_features:
                fea = np.asarray(pred["crystal_fea"], dtype=np.float64).reshape(-1)
                if feats is None:
                    feats = np.full((n, fea.size), np.nan, dtype=np.float64)
                feats[i] = fea

    for start in range(0, n, max(1, batch_size)):
        batch = list(range(start, min(n, start + max(1, batch_size))))
        try:
            run(batch)
        except Exception:
            for i in batch:
                try:
                    run([i])
                except Exception as exc:
                    errors[i] = f"CHGNet failed: {first_line(exc)}"
    for i in range(n):
        if errors[i] is None and not np.isfinite(energies[i]):
            errors[i] = "CHGNet failed: non-finite energy"
    return energies, feats, errors


@dataclass
class RelaxResult:
    """Outcome of one relaxation; ``structure`` is ``None`` exactly when ``error`` is set."""

    structure: Structure | None
    energy_per_atom: float
    converged: bool
    n_steps: int
    error: str | None = None


def relax_structure(
    structure: Structure,
    *,
    fmax: float = DEFAULT_FMAX,
    steps: int = DEFAULT_STEPS,
    relax_cell: bool = True,
    max_seconds: float | None = None,
    model: Any = None,
    n_threads: int | None = DEFAULT_THREADS,
) -> RelaxResult:
    """Relax positions (and the cell, unless ``relax_cell=False``) with CHGNet and FIRE.

    Stops at ``fmax`` (converged), after ``steps`` steps or after ``max_seconds`` of CPU
    time (not converged); :func:`matfuse.materials.relaxation.fire_relax` is the loop,
    CHGNet's own calculator (the one its ``StructOptimizer`` uses) gives the forces. Never
    raises for a bad structure: failures and explosions are returned as
    ``RelaxResult.error``.
    """
    from chgnet.model import StructOptimizer

    from matfuse.materials.relaxation import checked_relax

    model = model if model is not None else load_chgnet()
    # the calculator prints "CHGNet will run on cpu" when it is made
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        torch_threads(n_threads),
    ):
        warnings.simplefilter("ignore")
        try:
            device = str(next(model.parameters()).device)
            calculator = StructOptimizer(
                model=model, use_device=device, on_isolated_atoms=ISOLATED_ATOMS
            ).calculator
        except Exception as exc:
            error = f"relaxation failed: {first_line(exc)}"
            return RelaxResult(None, float("nan"), False, 0, error)
        return checked_relax(
            structure,
            calculator,
            fmax=fmax,
            steps=steps,
            relax_cell=relax_cell,
            max_seconds=max_seconds,
        )


def relax_structures(
    structures: Sequence[Any] | ParsedStructures,
    *,
    fmax: float = DEFAULT_FMAX,
    steps: int = DEFAULT_STEPS,
    relax_cell: bool = True,
    max_seconds: float | None = None,
    model: Any = None,
    n_threads: int | None = DEFAULT_THREADS,
) -> list[RelaxResult]:
    """Relax a batch one structure at a time (ASE optimisers are not batched).

    Invalid inputs (anything :func:`parse_structures` rejects) come back as failed results
    carrying the parse error, so the output is row-aligned with the input.
    """
    parsed = parse_structures(structures)
    model = model if model is not None else load_chgnet()
    return [
        relax_structure(
            s,
            fmax=fmax,
            steps=steps,
            relax_cell=relax_cell,
            max_seconds=max_seconds,
            model=model,
            n_threads=n_threads,
        )
        if s is not None
        else RelaxResult(None, float("nan"), False, 0, err)
        for s, err in zip(parsed.structures, parsed.errors, strict=True)
    ]


@dataclass
class EnergyResult:
    """Row-aligned energies of a batch; NaN where ``errors[i]`` is set.

    ``e_above_hull`` is negative for a structure below the hull of the references (a
    predicted new stable phase with respect to them).
    """

    energy_per_atom: np.ndarray
    e_above_hull: np.ndarray
    structures: list[Structure | None]
    errors: list[str | None]


def energies_per_atom(
    structures: Sequence[Any] | ParsedStructures,
    *,
    relax: bool = False,
    model: Any = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    fmax: float = DEFAULT_FMAX,
    steps: int = DEFAULT_STEPS,
    n_threads: int | None = DEFAULT_THREADS,
) -> tuple[np.ndarray, list[Structure | None], list[str | None]]:
    """CHGNet energy per atom of every row (after relaxation when ``relax=True``).

    Returns the energies, the structures they belong to (relaxed ones if relaxed) and the
    per-row errors; invalid inputs give NaN, never a dropped row.
    """
    parsed = parse_structures(structures)
    model = model if model is not None else load_chgnet()
    errors = list(parsed.errors)
    finals: list[Structure | None] = list(parsed.structures)
    if relax:
        results = relax_structures(parsed, fmax=fmax, steps=steps, model=model, n_threads=n_threads)
        finals = [r.structure for r in results]
        errors = [r.error for r in results]
    idx = [i for i, s in enumerate(finals) if s is not None]
    energies = np.full(len(finals), np.nan)
    if idx:
        valid = [s for s in finals if s is not None]  # the structures at the indices in `idx`
        e, _, errs = predict_chgnet(valid, model=model, batch_size=batch_size, n_threads=n_threads)
        for k, i in enumerate(idx):
            energies[i] = e[k]
            if errs[k] is not None:
                errors[i], finals[i] = errs[k], None
    return energies, finals, errors


def energy_above_hull(
    structures: Sequence[Any],
    reference_structures: Sequence[Any],
    *,
    relax: bool = False,
    model: Any = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    fmax: float = DEFAULT_FMAX,
    steps: int = DEFAULT_STEPS,
    n_threads: int | None = DEFAULT_THREADS,
) -> EnergyResult:
    """Energy above the convex hull (eV/atom) of each structure against reference phases.

    References and candidates are evaluated with the same model and ``relax`` setting. For
    each candidate the hull is built from the references inside its chemical system
    (one :class:`~pymatgen.analysis.phase_diagram.PhaseDiagram` per system, reused), so a
    large multi-element reference set does not make a high-dimensional hull. A candidate
    whose system lacks an elemental reference gets an error naming the missing elements.
    """
    model = model if model is not None else load_chgnet()
    kw = {"relax": relax, "model": model, "batch_size": batch_size, "fmax": fmax}
    kw |= {"steps": steps, "n_threads": n_threads}
    e_cand, finals, errors = energies_per_atom(structures, **kw)
    e_ref, ref_finals, _ = energies_per_atom(reference_structures, **kw)
    references = [
        (s.composition, float(e))
        for s, e in zip(ref_finals, e_ref, strict=True)
        if s is not None and np.isfinite(e)
    ]
    ehull = np.full(len(finals), np.nan)
    diagrams: dict[frozenset[str], Any] = {}
    for i, s in enumerate(finals):
        if s is None:
            continue
        try:
            ehull[i] = _e_above_hull(s.composition, float(e_cand[i]), references, diagrams)
        except _HullError as exc:
            errors[i] = str(exc)
    return EnergyResult(
        energy_per_atom=e_cand, e_above_hull=ehull, structures=finals, errors=errors
    )


class _HullError(ValueError):
    """A candidate whose hull cannot be built from the references."""


def _e_above_hull(
    comp: Composition,
    energy_per_atom: float,
    references: list[tuple[Composition, float]],
    diagrams: dict[frozenset[str], Any],
) -> float:
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram

    system = frozenset(el.symbol for el in comp.elements)
    if system not in diagrams:
        entries = [
            PDEntry(c, e * c.num_atoms)
            for c, e in references
            if {el.symbol for el in c.elements} <= system
        ]
        covered = {el.symbol for c, _ in references for el in c.elements if c.is_element}
        missing = sorted(system - covered)
        if missing:
            diagrams[system] = _HullError(
                f"no elemental reference for {', '.join(missing)}: cannot build the hull"
            )
        else:
            try:
                diagrams[system] = PhaseDiagram(entries)
            except Exception as exc:
                diagrams[system] = _HullError(f"hull construction failed: {first_line(exc)}")
    diagram = diagrams[system]
    if isinstance(diagram, _HullError):
        raise diagram
    entry = PDEntry(comp, energy_per_atom * comp.num_atoms)
    _, e_hull = diagram.get_decomp_and_e_above_hull(entry, allow_negative=True)
    return float(e_hull)
