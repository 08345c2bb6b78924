"""Lattices as six numbers: what the flow moves, and how a matrix is made from them.

The lattice is represented by its parameters (a, b, c, alpha, beta, gamma) of the Niggli
reduced cell, as FlowMM does, not by DiffCSP's matrix: the parameters are already invariant
to rotations, so the flow needs no O(3)-equivariant output, and the matrix is rebuilt only
when a structure is written. Lengths enter as ``log(length / N^(1/3))`` (the cell grows with
the number of atoms ``N``; the log keeps lengths positive), angles in radians; both are then
standardised with the training set's means and standard deviations, floored so that a data
set whose angles never vary (perov_5 is all cubic) does not divide by zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["LatticeScaler", "lattice_features", "matrix_from_parameters", "raw_parameters"]

#: Smallest standard deviation used to standardise a lattice coordinate (log units, radians).
MIN_STD = 0.05


def raw_parameters(
    lengths: torch.Tensor, angles_deg: torch.Tensor, n_atoms: torch.Tensor
) -> torch.Tensor:
    """``(B, 6)``: log(length / N^(1/3)) for a, b, c, then the angles in radians."""
    scale = n_atoms.to(lengths.dtype).clamp(min=1).pow(1.0 / 3.0).unsqueeze(-1)
    return torch.cat([torch.log(lengths / scale), torch.deg2rad(angles_deg)], dim=-1)


def matrix_from_parameters(raw: torch.Tensor, n_atoms: torch.Tensor) -> torch.Tensor:
    """``(B, 3, 3)`` lattice matrices (rows are the vectors a, b, c) from :func:`raw_parameters`.

    The same convention as pymatgen's ``Lattice.from_parameters``: c along z, a in the xz
    plane. Angles are clamped into (10, 170) degrees; a combination that admits no cell
    (alpha + beta < gamma, ...) gives a NaN volume that the caller flags.
    """
    scale = n_atoms.to(raw.dtype).clamp(min=1).pow(1.0 / 3.0).unsqueeze(-1)
    lengths = torch.exp(raw[:, :3]) * scale
    lo, hi = math.radians(10.0), math.radians(170.0)
    alpha, beta, gamma = raw[:, 3:].clamp(lo, hi).unbind(-1)
    a, b, c = lengths.unbind(-1)
    ca, cb, cg = torch.cos(alpha), torch.cos(beta), torch.cos(gamma)
    sa, sb = torch.sin(alpha), torch.sin(beta)
    gamma_star = torch.arccos(((ca * cb - cg) / (sa * sb)).clamp(-1.0, 1.0))
    zeros = torch.zeros_like(a)
    va = torch.stack([a * sb, zeros, a * cb], dim=-1)
    vb = torch.stack(
        [-b * sa * torch.cos(gamma_star), b * sa * torch.sin(gamma_star), b * ca], dim=-1
    )
    vc = torch.stack([zeros, zeros, c], dim=-1)
    return torch.stack([va, vb, vc], dim=1)


def lattice_features(matrix: torch.Tensor, n_atoms: torch.Tensor) -> torch.Tensor:
    """``(B, 6)`` rotation-invariant features of lattice matrices: log reduced lengths and the
    cosines of the angles, both read off the metric tensor ``L L^T`` (as DiffCSP's inner
    products, but bounded and scale-free so that a 5-atom and a 50-atom cell look alike)."""
    metric = matrix @ matrix.transpose(1, 2)
    lengths = torch.sqrt(torch.diagonal(metric, dim1=1, dim2=2).clamp(min=1e-12))
    scale = n_atoms.to(matrix.dtype).clamp(min=1).pow(1.0 / 3.0).unsqueeze(-1)
    a, b, c = lengths.unbind(-1)
    cos = torch.stack(
        [metric[:, 1, 2] / (b * c), metric[:, 0, 2] / (a * c), metric[:, 0, 1] / (a * b)], dim=-1
    )
    return torch.cat([torch.log(lengths / scale), cos], dim=-1)


@dataclass
class LatticeScaler:
    """Standardisation of :func:`raw_parameters` (per coordinate mean and floored std)."""

    mean: list[float]
    std: list[float]

    @classmethod
    def fit(cls, raw: torch.Tensor) -> LatticeScaler:
        mean = raw.mean(dim=0)
        std = raw.std(dim=0, unbiased=False).clamp(min=MIN_STD) if len(raw) > 1 else torch.ones(6)
        return cls(mean=[float(x) for x in mean], std=[float(x) for x in std])

    def transform(self, raw: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, dtype=raw.dtype, device=raw.device)
        std = torch.tensor(self.std, dtype=raw.dtype, device=raw.device)
        return (raw - mean) / std

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, dtype=z.dtype, device=z.device)
        std = torch.tensor(self.std, dtype=z.dtype, device=z.device)
        return z * std + mean
