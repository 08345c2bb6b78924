"""Energies from SevenNet-0, a second pretrained potential beside CHGNet.

Why a second one: an MLIP hull is a proxy for DFT, and a structure that two independently
trained potentials both put on the hull is a better bet than one that only CHGNet likes.
SevenNet-0 (Park et al. 2024, an equivariant NequIP-style network, 5 Å cutoff) ships its
weights inside the ``sevenn`` wheel and, like CHGNet, was trained on MPtrj. Its energies are
not on CHGNet's scale, though: on the known-ground-states compounds its formation energies
differ from CHGNet's by 0.24 eV/atom (mean absolute), mostly less negative and most for
oxides (``benchmarks/results/crystal_potentials.md``; consistent with CHGNet
predicting MP2020-corrected energies and SevenNet-0 uncorrected ones), so a hull must be
built with one potential throughout, never mixing the two. Its 5 Å cutoff also leaves
atoms of very open cells (bcc Cs) without neighbours; those are flagged, as CHGNet's are.

The functions mirror :mod:`matfuse.materials.energy` (same ``RelaxResult``, same
``(energies, features, errors)`` return of the predictor) so a caller picks a potential by
name: :func:`sevennet_relaxer` is the drop-in for ``chgnet_relaxer`` of
:mod:`matfuse.crystals.search`. Relaxation is ASE's FIRE on a ``FrechetCellFilter`` (what
CHGNet's ``StructOptimizer`` does), with step, force and CPU-time limits; a failed or
exploding relaxation is returned as an error, never raised.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from pymatgen.core import Structure

from matfuse.materials.energy import DEFAULT_FMAX, RelaxResult, torch_threads
from matfuse.materials.relaxation import checked_relax
from matfuse.materials.structures import ParsedStructures, parse_structures
from matfuse.rows import first_line

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MODEL",
    "load_sevennet",
    "predict_sevennet",
    "relax_structure",
    "relax_structures",
    "sevennet_available",
    "sevennet_relaxer",
]

DEFAULT_MODEL = "7net-0"
DEFAULT_STEPS = 500


def sevennet_available() -> bool:
    """Whether the optional ``sevenn`` package is installed."""
    import importlib.util

    return importlib.util.find_spec("sevenn") is not None


@lru_cache(maxsize=2)
def load_sevennet(model_name: str = DEFAULT_MODEL, device: str = "cpu") -> Any:
    """The SevenNet ASE calculator (cached; ~5 s on first use). ``ImportError`` with the
    install hint when ``sevenn`` is missing."""
    try:
        from sevenn.calculator import SevenNetCalculator
    except ImportError as exc:
        raise ImportError(
            "SevenNet needs the optional package: pip install 'matfuse[crystals]' (sevenn)"
        ) from exc
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return SevenNetCalculator(model=model_name, device=device)


def _check_isolated(structure: Structure, cutoff: float) -> str | None:
    """SevenNet gives an atom without neighbours its bare atomic energy: flag it, as CHGNet
    does, instead of returning a meaningless number."""
    centers = structure.get_neighbor_list(cutoff)[0]
    lonely = sorted(set(range(len(structure))) - {int(c) for c in centers})
    if lonely:
        return f"SevenNet failed: atom {lonely[0]} has no neighbour within {cutoff:g} Å"
    return None


def _atoms(structure: Structure, calc: Any) -> Any:
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = calc
    return atoms


def predict_sevennet(
    structures: Sequence[Structure],
    *,
    model: Any = None,
    n_threads: int | None = 1,
) -> tuple[np.ndarray, None, list[str | None]]:
    """Energy per atom (eV/atom) of each structure, NaN where ``errors[i]`` is set.

    Same return shape as :func:`matfuse.materials.energy.predict_chgnet` (SevenNet has no
    crystal feature, so the middle item is ``None``). One structure per forward pass: the
    ASE calculator is not batched, and on one CPU thread small cells gain little from it.
    """
    calc = model if model is not None else load_sevennet()
    energies = np.full(len(structures), np.nan)
    errors: list[str | None] = [None] * len(structures)
    for i, s in enumerate(structures):
        try:
            errors[i] = _check_isolated(s, float(calc.cutoff))
            if errors[i] is None:
                with warnings.catch_warnings(), torch_threads(n_threads):
                    warnings.simplefilter("ignore")
                    energies[i] = float(_atoms(s, calc).get_potential_energy()) / len(s)
        except Exception as exc:
            errors[i] = f"SevenNet failed: {first_line(exc)}"
        if errors[i] is None and not np.isfinite(energies[i]):
            errors[i] = "SevenNet failed: non-finite energy"
        if errors[i] is not None:
            energies[i] = np.nan
    return energies, None, errors


def relax_structure(
    structure: Structure,
    *,
    fmax: float = DEFAULT_FMAX,
    steps: int = DEFAULT_STEPS,
    relax_cell: bool = True,
    max_seconds: float | None = None,
    model: Any = None,
    n_threads: int | None = 1,
) -> RelaxResult:
    """Relax positions (and the cell unless ``relax_cell=False``) with SevenNet and FIRE.

    Stops at ``fmax`` (eV/Å, converged), after ``steps`` steps or after ``max_seconds`` of
    CPU time (not converged). Never raises for a bad structure: failures and explosions
    (energy below -20 eV/atom, volume changed over 4-fold, atoms under 0.5 Å apart) come
    back as ``RelaxResult.error``.
    """
    calc = model if model is not None else load_sevennet()
    try:
        error = _check_isolated(structure, float(calc.cutoff))
    except Exception as exc:
        error = f"relaxation failed: {first_line(exc)}"
    if error is not None:
        return RelaxResult(None, float("nan"), False, 0, error)
    with torch_threads(n_threads):
        return checked_relax(
            structure,
            calc,
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
    n_threads: int | None = 1,
) -> list[RelaxResult]:
    """Relax a batch one structure at a time; unparseable inputs come back as failed
    results carrying the parse error (row-aligned with the input)."""
    parsed = parse_structures(structures)
    calc = model if model is not None else load_sevennet()
    return [
        relax_structure(
            s,
            fmax=fmax,
            steps=steps,
            relax_cell=relax_cell,
            max_seconds=max_seconds,
            model=calc,
            n_threads=n_threads,
        )
        if s is not None
        else RelaxResult(None, float("nan"), False, 0, err)
        for s, err in zip(parsed.structures, parsed.errors, strict=True)
    ]


def sevennet_relaxer(
    steps: int = 200,
    fmax: float = DEFAULT_FMAX,
    n_threads: int | None = 1,
    max_seconds: float | None = None,
) -> Callable[[Structure, bool], RelaxResult]:
    """``relaxer(structure, relax_cell) -> RelaxResult`` for the crystal search, the
    SevenNet counterpart of :func:`matfuse.crystals.search.chgnet_relaxer`."""

    def relax(structure: Structure, relax_cell: bool = True) -> RelaxResult:
        return relax_structure(
            structure,
            steps=steps,
            fmax=fmax,
            relax_cell=relax_cell,
            max_seconds=max_seconds,
            model=load_sevennet(),
            n_threads=n_threads,
        )

    return relax
