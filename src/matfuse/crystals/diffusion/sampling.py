"""Generated crystal structures out: the Python API of the crystal generator.

CSP (:func:`generate_structures`: a composition in) and de novo (:func:`generate_de_novo`:
atom count, elements, lattice and positions all generated, optionally steered by property
conditions with classifier-free guidance).

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
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from pymatgen.core import Composition, Element, Lattice, Structure

from matfuse.crystals.diffusion.flow import integrate
from matfuse.crystals.diffusion.lattice import matrix_from_parameters
from matfuse.crystals.diffusion.model import MASK, MAX_Z
from matfuse.crystals.diffusion.persistence import (
    CrystalFlowModel,
    load_crystal_model,
    resolve_model_path,
)

logger = logging.getLogger(__name__)

__all__ = [
    "cell_problem",
    "cell_species",
    "element_mask",
    "generate_de_novo",
    "generate_structures",
    "get_model",
]


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


def _conditions(
    flow: CrystalFlowModel, targets: Mapping[str, float | str] | None, n: int, device: str
) -> torch.Tensor | None:
    if not targets:
        return None
    if flow.conditions is None:
        raise ValueError(f"model {flow.name!r} was trained without property conditions")
    row = flow.conditions.transform(flow.conditions.row(targets).double()).float()
    return row.unsqueeze(0).repeat(n, 1).to(device)


def _sample(
    flow: CrystalFlowModel,
    cells: list[torch.Tensor],
    seed: int,
    *,
    steps: int | None,
    coord_speedup: float | None,
    batch_size: int,
    device: str,
    conditions: Mapping[str, float | str] | None = None,
    guidance: float | None = None,
    allowed: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> list[Structure]:
    """Integrate the flow for cells given as atomic-number tensors (0 = generate the type)."""
    sampling = flow.sampling
    steps = int(steps if steps is not None else sampling.get("steps", 100))
    speedup = float(
        coord_speedup if coord_speedup is not None else sampling.get("coord_speedup", 0)
    )
    scale = float(guidance if guidance is not None else sampling.get("guidance", 1.0))
    generator = generator or torch.Generator().manual_seed(int(seed))
    out: list[Structure] = []
    for start in range(0, len(cells), batch_size):
        chunk = cells[start : start + batch_size]
        n_atoms = torch.tensor([len(c) for c in chunk], dtype=torch.long, device=device)
        frac, raw, types = integrate(
            flow.denoiser,
            torch.cat(chunk).to(device),
            n_atoms,
            flow.scaler,
            steps=steps,
            generator=generator,
            coord_speedup=speedup,
            conditions=_conditions(flow, conditions, len(chunk), device),
            guidance=scale,
            allowed=allowed,
        )
        lattices = matrix_from_parameters(raw.double(), n_atoms).cpu().numpy()
        frac_np = frac.double().cpu().numpy()
        types_np = types.cpu().numpy()
        offset = 0
        for k, n in enumerate(n_atoms.tolist()):
            species = [Element.from_Z(int(z)).symbol for z in types_np[offset : offset + n]]
            out.append(_structure(lattices[k], species, frac_np[offset : offset + n]))
            offset += n
    return out


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
    conditions: Mapping[str, float | str] | None = None,
    guidance: float | None = None,
) -> list[Structure]:
    """CSP: ``n`` structures of ``z`` formula units of ``composition`` (as written: ``SrTiO3``
    is five atoms) sampled from ``model``. ``ValueError`` for an unusable composition."""
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
    return _sample(
        flow,
        [numbers] * n,
        seed,
        steps=steps,
        coord_speedup=coord_speedup,
        batch_size=batch_size,
        device=device,
        conditions=conditions,
        guidance=guidance,
    )


def element_mask(elements: list[str] | None) -> torch.Tensor | None:
    """``(MAX_Z + 1,)`` True for the allowed elements; ``ValueError`` for an unknown symbol."""
    if not elements:
        return None
    mask = torch.zeros(MAX_Z + 1, dtype=torch.bool)
    for symbol in elements:
        try:
            z = Element(symbol.strip()).Z
        except ValueError:
            raise ValueError(f"unknown element {symbol!r}") from None
        if z > MAX_Z:
            raise ValueError(f"element {symbol} (Z={z}) is beyond the model's Z <= {MAX_Z}")
        mask[z] = True
    return mask


def generate_de_novo(
    model: str | Path | CrystalFlowModel,
    n: int = 1,
    seed: int = 0,
    *,
    n_atoms: int | None = None,
    elements: list[str] | None = None,
    conditions: Mapping[str, float | str] | None = None,
    guidance: float | None = None,
    steps: int | None = None,
    coord_speedup: float | None = None,
    batch_size: int = 256,
    device: str = "cpu",
) -> list[Structure]:
    """De novo: ``n`` crystals with generated atom count, elements, lattice and positions.

    The atom count of each cell is drawn from the training set's counts (or fixed by
    ``n_atoms``); ``elements`` restricts the generated types (default: the elements seen in
    training, as an element never seen has an untrained output); ``conditions`` (e.g.
    ``{"heat_ref": -0.5}``) steer the sample by classifier-free guidance of scale
    ``guidance`` (default: the model's). ``ValueError`` for a CSP-only model.
    """
    flow = get_model(model, device)
    if not flow.de_novo:
        raise ValueError(
            f"model {flow.name!r} is CSP only (no type head): give a composition (--formula)"
        )
    generator = torch.Generator().manual_seed(int(seed))
    if n_atoms is not None:
        if n_atoms < 1:
            raise ValueError(f"n_atoms {n_atoms}: need at least 1")
        sizes = [int(n_atoms)] * n
    else:
        counts = flow.atom_counts
        if not counts:
            raise ValueError(f"model {flow.name!r} stores no atom-count distribution")
        values = torch.tensor(sorted(counts))
        weights = torch.tensor([float(counts[int(v)]) for v in values])
        picks = torch.multinomial(weights, n, replacement=True, generator=generator)
        sizes = values[picks].tolist()
    cells = [torch.full((size,), MASK, dtype=torch.long) for size in sizes]
    return _sample(
        flow,
        cells,
        seed,
        steps=steps,
        coord_speedup=coord_speedup,
        batch_size=batch_size,
        device=device,
        conditions=conditions,
        guidance=guidance,
        allowed=element_mask(elements or flow.elements or None),
        generator=generator,
    )


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
