"""One FIRE loop for every potential: step, force and CPU-time limits, and explosion checks.

Why our own loop and not CHGNet's ``StructOptimizer.relax``: that runs ASE's optimiser to
its step limit with no way to stop it early, so one pathological candidate (a cell that
keeps shearing, a potential that is slow on it) can hold a search's worker for minutes.
Iterating ASE's ``irun`` ourselves lets a CPU-time limit end the relaxation between steps
and return where it got to (not converged), and gives CHGNet and SevenNet the same
relaxation: FIRE on ASE's ``FrechetCellFilter``, what ``StructOptimizer`` does.

A relaxation that "explodes" (energy below -20 eV/atom, the volume changed more than
4-fold, atoms pulled under 0.5 Å apart) is reported as an error: such a structure is an
artefact of the potential outside its training domain, not a prediction.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymatgen.core import Structure

from matfuse.materials.energy import RelaxResult
from matfuse.rows import first_line

logger = logging.getLogger(__name__)

__all__ = ["MIN_DISTANCE", "FireOutcome", "checked_relax", "exploded", "fire_relax"]

#: Below this energy per atom, a relaxation has left the potential's domain.
MIN_ENERGY_PER_ATOM = -20.0
#: More than this volume ratio (either way) between start and end: exploded.
MAX_VOLUME_RATIO = 4.0
#: Atoms closer than this (Å) after relaxing: collapsed.
MIN_DISTANCE = 0.5


@dataclass(frozen=True)
class FireOutcome:
    """Where a FIRE run ended: the final structure, its energy, and why it stopped."""

    structure: Structure
    energy_per_atom: float
    converged: bool
    n_steps: int
    timed_out: bool = False


def fire_relax(
    structure: Structure,
    calculator: Any,
    *,
    fmax: float,
    steps: int,
    relax_cell: bool = True,
    max_seconds: float | None = None,
) -> FireOutcome:
    """Relax ``structure`` with ``calculator`` (an ASE calculator) and FIRE.

    Stops when the largest force (and, with the cell relaxed, stress component, as ASE's
    filter scales it) is under ``fmax`` (converged), after ``steps`` steps, or once
    ``max_seconds`` of this process's CPU time have passed (``timed_out``, not converged).
    Exceptions of the calculator propagate: the caller turns them into a flagged result.
    """
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = calculator
    started = time.process_time()
    converged = timed_out = False
    n_steps = 0
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        target = FrechetCellFilter(atoms) if relax_cell else atoms
        optimizer = FIRE(target, logfile=None)
        for done in optimizer.irun(fmax=fmax, steps=steps):
            converged = bool(done)
            n_steps = int(optimizer.nsteps)
            if converged:
                break
            if max_seconds is not None and time.process_time() - started > max_seconds:
                timed_out = True
                logger.info("relaxation stopped after %.0f CPU s (%d steps)", max_seconds, n_steps)
                break
        energy = float(atoms.get_potential_energy()) / len(atoms)
    final = AseAtomsAdaptor.get_structure(atoms)
    return FireOutcome(final, energy, converged, n_steps, timed_out)


def exploded(start: Structure, final: Structure, energy_per_atom: float) -> str | None:
    """Why a relaxed structure is an artefact (see the module notes), or ``None``."""
    if not np.isfinite(energy_per_atom):
        return "relaxation failed: non-finite energy"
    if energy_per_atom < MIN_ENERGY_PER_ATOM:
        return f"relaxation exploded: {energy_per_atom:.1f} eV/atom"
    ratio = final.volume / start.volume
    if not 1 / MAX_VOLUME_RATIO <= ratio <= MAX_VOLUME_RATIO:
        return f"relaxation exploded: volume changed {ratio:.2g}-fold"
    if len(final) > 1:
        dist = final.distance_matrix[np.triu_indices(len(final), k=1)]
        if dist.size and float(dist.min()) < MIN_DISTANCE:
            return f"relaxation exploded: atoms {float(dist.min()):.2f} Å apart"
    return None


def checked_relax(
    structure: Structure,
    calculator: Any,
    *,
    fmax: float,
    steps: int,
    relax_cell: bool = True,
    max_seconds: float | None = None,
) -> RelaxResult:
    """:func:`fire_relax` as a :class:`~matfuse.materials.energy.RelaxResult`: an exception
    of the potential or an explosion becomes the result's ``error``, never a raise."""
    try:
        out = fire_relax(
            structure,
            calculator,
            fmax=fmax,
            steps=steps,
            relax_cell=relax_cell,
            max_seconds=max_seconds,
        )
    except Exception as exc:
        return RelaxResult(None, float("nan"), False, 0, f"relaxation failed: {first_line(exc)}")
    error = exploded(structure, out.structure, out.energy_per_atom)
    if error is not None:
        return RelaxResult(None, out.energy_per_atom, False, out.n_steps, error)
    return RelaxResult(out.structure, out.energy_per_atom, out.converged, out.n_steps)
