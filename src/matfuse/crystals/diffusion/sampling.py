"""Composition in, generated crystal structures out: the Python API of the crystal generator.

>>> from matfuse.crystals.diffusion.sampling import generate_structures
>>> cells = generate_structures("perov5", "SrTiO3", n=4, seed=0)  # doctest: +SKIP
>>> [c.composition.reduced_formula for c in cells]  # doctest: +SKIP
['SrTiO3', 'SrTiO3', 'SrTiO3', 'SrTiO3']

Sampling is a pure function of the model, the composition, ``n``, ``seed``, ``steps`` and
``batch_size`` on a CPU: the start noise comes from a ``torch.Generator`` seeded with
``seed`` (GPU kernels may differ in the last bits).
"""

from __future__ import annotations

import logging
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from pymatgen.core import Composition, Element, Lattice, Structure

from matfuse.crystals.diffusion.flow import integrate
from matfuse.crystals.diffusion.lattice import matrix_from_parameters
from matfuse.crystals.diffusion.persistence import (
    CrystalFlowModel,
    load_crystal_model,
    resolve_model_path,
)

logger = logging.getLogger(__name__)

__all__ = ["cell_problem", "cell_species", "generate_structures", "get_model"]


@lru_cache(maxsize=4)
def _cached(path: str, device: str) -> CrystalFlowModel:
    return load_crystal_model(path, device=device)


def get_model(model: str | Path | CrystalFlowModel, device: str = "cpu") -> CrystalFlowModel:
    """A loaded model, from a name or a directory (cached), or the model itself."""
    if isinstance(model, CrystalFlowModel):
        return model
    return _cached(str(resolve_model_path(model).resolve()), device)


def cell_species(composition: Composition, z: int = 1) -> list[str]:
    """The atoms of one cell: ``z`` formula units of ``composition``, element by element."""
    species: list[str] = []
    for el, amount in composition.items():
        species += [str(getattr(el, "symbol", el))] * int(round(amount)) * int(z)
    return species


def _structure(lattice: np.ndarray, species: list[str], frac: np.ndarray) -> Structure:
    return Structure(Lattice(lattice), species, frac, coords_are_cartesian=False)


def generate_structures(
    model: str | Path | CrystalFlowModel,
    composition: str | Composition,
    n: int = 1,
    seed: int = 0,
    *,
    z: int = 1,
    steps: int | None = None,
    coord_speedup: float | None = None,
    batch_size: int = 256,
    device: str = "cpu",
) -> list[Structure]:
    """``n`` structures of ``z`` formula units of ``composition`` (as written: ``SrTiO3`` is five
    atoms) sampled from ``model``. ``ValueError`` for an unusable composition."""
    flow = get_model(model, device)
    comp = Composition(composition) if isinstance(composition, str) else composition
    species = cell_species(comp, z)
    if not species:
        raise ValueError(f"composition {composition!r} has no atoms")
    unseen = sorted({s for s in species if flow.elements and s not in flow.elements})
    if unseen:
        logger.warning(
            "%s never seen in training by %s: their embeddings are untrained", unseen, flow.name
        )
    numbers = torch.tensor([Element(s).Z for s in species], dtype=torch.long)
    sampling = flow.sampling
    steps = int(steps if steps is not None else sampling.get("steps", 100))
    speedup = float(
        coord_speedup if coord_speedup is not None else sampling.get("coord_speedup", 0)
    )
    generator = torch.Generator().manual_seed(int(seed))
    out: list[Structure] = []
    for start in range(0, n, batch_size):
        b = min(batch_size, n - start)
        n_atoms = torch.full((b,), len(species), dtype=torch.long, device=device)
        types = numbers.repeat(b).to(device)
        frac, raw = integrate(
            flow.denoiser,
            types,
            n_atoms,
            flow.scaler,
            steps=steps,
            generator=generator,
            coord_speedup=speedup,
        )
        lattices = matrix_from_parameters(raw.double(), n_atoms).cpu().numpy()
        frac_np = frac.double().cpu().numpy().reshape(b, len(species), 3)
        for k in range(b):
            out.append(_structure(lattices[k], species, frac_np[k]))
    return out


def cell_problem(structure: Structure, min_distance: float = 0.5) -> str | None:
    """Why a generated cell is not a valid crystal (DiffCSP's structural validity: every
    interatomic distance above 0.5 Angstrom, positive finite volume), or ``None``."""
    volume = float(structure.volume)
    if not math.isfinite(volume) or volume <= 0.1:
        return f"degenerate cell (volume {volume:.3g})"
    if len(structure) > 1:
        dist = structure.distance_matrix
        off = dist[~np.eye(len(structure), dtype=bool)]
        if off.size and float(off.min()) < min_distance:
            return f"atoms {float(off.min()):.2f} A apart (< {min_distance} A)"
    return None
