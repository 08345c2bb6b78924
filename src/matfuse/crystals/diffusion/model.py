"""The denoiser: a periodic, E(3)-invariant message-passing network over all atom pairs of a cell.

CSPNet's recipe (DiffCSP), written for this package: each atom starts from an embedding of
its element and of the flow time; each layer sends a message along every pair (i, j) of the
same cell made from both atoms' features, rotation-invariant lattice features (log reduced
lengths and angle cosines from the metric tensor ``L L^T``) and Fourier features
``sin/cos(2 pi k (f_j - f_i))`` of the fractional difference, averages the messages at
``i`` and updates ``i`` residually. Because only ``L L^T`` and fractional differences enter,
the outputs are invariant to rotating the lattice, to translating all atoms, and to moving
any atom by a whole lattice vector; they are permutation-equivariant because messages are
averaged. Heads: a velocity of each atom's fractional coordinates (per atom) and of the six
lattice parameters (from the mean of the atoms' features).

De novo mode adds two optional parts (both off in the configuration of the original CSP
checkpoints, which therefore load unchanged):

- ``type_head``: per-atom logits over the elements, for masked (absorbing) discrete flow
  matching; an atom whose type is not yet generated enters as the mask token ``0``.
- ``conditions``: properties (standardised scalars, space group, chemical system: see
  :mod:`~matfuse.crystals.diffusion.conditions`) embedded by a small network each and added
  to the time embedding; a missing or dropped property uses a learned null vector instead,
  which is what classifier-free guidance contrasts with.
- ``adapters`` (MatterGen's fine-tuning recipe): conditions added to a *trained* model
  whose own weights stay frozen. Each adapter condition is embedded, the embeddings of the
  present ones summed, and before every message-passing layer a bias-free linear "mixin",
  initialised at zero, adds its image of that sum to every atom's features. At the start
  of fine-tuning the model is therefore exactly the base model, and a cell without adapter
  conditions always is: the unconditional branch of guidance is the base model itself.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from matfuse.crystals.diffusion.conditions import CHEMICAL_SYSTEM, SCALAR, SPACE_GROUP, kind_width
from matfuse.crystals.diffusion.lattice import lattice_features

__all__ = ["DenoiserConfig", "PeriodicDenoiser"]

#: Atomic numbers 1..MAX_Z are embedded; 0 is the mask token (type not generated yet).
MAX_Z = 103
MASK = 0


@dataclass
class DenoiserConfig:
    """Architecture of :class:`PeriodicDenoiser` (stored in the model directory's JSON)."""

    hidden: int = 256
    layers: int = 4
    n_frequencies: int = 8
    time_dim: int = 64
    type_head: bool = False
    n_conditions: int = 0
    #: kind of each of the ``n_conditions`` (empty: all scalars, as in older directories)
    condition_kinds: list[str] = field(default_factory=list)
    #: kinds of the adapter conditions, after the base ones in a condition row
    adapter_kinds: list[str] = field(default_factory=list)

    def base_kinds(self) -> list[str]:
        return list(self.condition_kinds) or [SCALAR] * self.n_conditions

    def widths(self) -> tuple[list[int], list[int]]:
        """Columns of each base condition and of each adapter condition in a row."""
        return [kind_width(k) for k in self.base_kinds()], [
            kind_width(k) for k in self.adapter_kinds
        ]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of the flow time ``t`` in [0, 1] (transformer style)."""
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, device=t.device, dtype=t.dtype) / half)
    angles = 1000.0 * t.unsqueeze(-1) * freqs
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


def fourier_features(diff: torch.Tensor, n_frequencies: int) -> torch.Tensor:
    """``(E, 6 K)`` sin and cos of ``2 pi k diff`` for k = 1..K: periodic in every coordinate."""
    k = torch.arange(1, n_frequencies + 1, device=diff.device, dtype=diff.dtype)
    angles = 2.0 * math.pi * diff.unsqueeze(-1) * k  # (E, 3, K)
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1).flatten(1)


class _SpaceGroupEmbedding(nn.Module):
    """A learned vector per space-group number (0 is never a real group)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.table = nn.Embedding(231, hidden)

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        return self.table(values[:, 0].round().long().clamp(0, 230))


def condition_embedder(kind: str, hidden: int) -> nn.Module:
    """``(B, kind_width(kind))`` finite raw values -> ``(B, hidden)``."""
    if kind == SPACE_GROUP:
        return _SpaceGroupEmbedding(hidden)
    n_in = kind_width(kind) if kind == CHEMICAL_SYSTEM else 1
    return nn.Sequential(nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden))


def _present_sum(
    embedders: nn.ModuleList,
    blocks: list[torch.Tensor],
    null: torch.Tensor | None,
    like: torch.Tensor,
) -> torch.Tensor:
    """Sum of the embeddings of present conditions; an absent one (NaN) adds ``null[k]``,
    or nothing when ``null`` is None. Every embedder runs on every call (absent rows are
    replaced through ``torch.where``), so data-parallel training finds no unused weights."""
    total = torch.zeros_like(like)
    for k, (embed, block) in enumerate(zip(embedders, blocks, strict=True)):
        present = ~torch.isnan(block[:, :1])
        emb = embed(torch.nan_to_num(block.to(like.dtype), nan=0.0))
        absent = null[k].expand_as(emb) if null is not None else torch.zeros_like(emb)
        total = total + torch.where(present, emb, absent)
    return total


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, n_out), nn.SiLU())


class _PairLayer(nn.Module):
    def __init__(self, hidden: int, n_edge_extra: int) -> None:
        super().__init__()
        self.edge = _mlp(2 * hidden + n_edge_extra, hidden, hidden)
        self.node = _mlp(2 * hidden, hidden, hidden)
        self.norm = nn.LayerNorm(hidden)

    def forward(
        self, h: torch.Tensor, edges: torch.Tensor, edge_extra: torch.Tensor, degree: torch.Tensor
    ) -> torch.Tensor:
        i, j = edges[:, 0], edges[:, 1]
        hn = self.norm(h)
        messages = self.edge(torch.cat([hn[i], hn[j], edge_extra], dim=-1))
        agg = torch.zeros_like(h).index_add_(0, i, messages) / degree.unsqueeze(-1)
        return h + self.node(torch.cat([hn, agg], dim=-1))


class PeriodicDenoiser(nn.Module):
    """Velocities of fractional coordinates and lattice parameters at flow time ``t``."""

    lattice_mean: torch.Tensor
    lattice_std: torch.Tensor

    def __init__(self, config: DenoiserConfig | None = None) -> None:
        super().__init__()
        self.config = config or DenoiserConfig()
        c = self.config
        self.embed = nn.Embedding(MAX_Z + 1, c.hidden)
        self.time = nn.Sequential(nn.Linear(c.time_dim, c.hidden), nn.SiLU())
        self.inp = nn.Linear(2 * c.hidden, c.hidden)
        n_extra = 6 + 6 * c.n_frequencies
        self.layers = nn.ModuleList(_PairLayer(c.hidden, n_extra) for _ in range(c.layers))
        self.out_norm = nn.LayerNorm(c.hidden)
        self.coord_head = nn.Sequential(
            nn.Linear(c.hidden, c.hidden), nn.SiLU(), nn.Linear(c.hidden, 3)
        )
        # standardisation of the lattice features (set from the training data by
        # set_lattice_statistics): raw log-lengths and cosines vary by a few hundredths
        self.register_buffer("lattice_mean", torch.zeros(6))
        self.register_buffer("lattice_std", torch.ones(6))
        self.lattice_head = nn.Sequential(
            nn.Linear(c.hidden, c.hidden), nn.SiLU(), nn.Linear(c.hidden, 6)
        )
        self.type_head: nn.Module | None = None
        if c.type_head:
            self.type_head = nn.Sequential(
                nn.Linear(c.hidden, c.hidden), nn.SiLU(), nn.Linear(c.hidden, MAX_Z + 1)
            )
        # scalar embedders keep the key names of older directories (condition_mlps.k.0...)
        self.condition_mlps = nn.ModuleList(
            condition_embedder(kind, c.hidden) for kind in c.base_kinds()
        )
        # absent (not an empty tensor) without conditions, so CSP checkpoints load strictly
        self.null_condition: nn.Parameter | None = (
            nn.Parameter(torch.zeros(c.n_conditions, c.hidden)) if c.n_conditions else None
        )
        self.adapter_embeddings = nn.ModuleList(
            condition_embedder(kind, c.hidden) for kind in c.adapter_kinds
        )
        self.adapter_mixins: nn.ModuleList | None = None
        if c.adapter_kinds:
            mixins = [nn.Linear(c.hidden, c.hidden, bias=False) for _ in range(c.layers)]
            for mixin in mixins:
                nn.init.zeros_(mixin.weight)
            self.adapter_mixins = nn.ModuleList(mixins)

    def adapter_parameters(self) -> list[nn.Parameter]:
        """What adapter fine-tuning trains (everything else stays frozen)."""
        params = list(self.adapter_embeddings.parameters())
        if self.adapter_mixins is not None:
            params += list(self.adapter_mixins.parameters())
        return params

    def set_lattice_statistics(self, mean: list[float], std: list[float]) -> None:
        """Centre and scale the lattice features with a :class:`LatticeScaler`'s statistics
        (log reduced lengths directly; cosines at the mean angles, scaled by their spread)."""
        m = torch.tensor(mean, dtype=torch.float64)
        sd = torch.tensor(std, dtype=torch.float64)
        feat_mean = torch.cat([m[:3], torch.cos(m[3:])])
        feat_std = torch.cat([sd[:3], (torch.sin(m[3:]).abs() * sd[3:]).clamp(min=1e-3)])
        self.lattice_mean.copy_(feat_mean.to(self.lattice_mean))
        self.lattice_std.copy_(feat_std.to(self.lattice_std))

    def forward(
        self,
        atom_types: torch.Tensor,
        frac: torch.Tensor,
        lattice: torch.Tensor,
        t: torch.Tensor,
        graph: torch.Tensor,
        n_atoms: torch.Tensor,
        edges: torch.Tensor,
        conditions: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(v_frac (N, 3), v_lattice (B, 6), type logits (N, MAX_Z + 1) or None)``.

        ``lattice`` is ``(B, 3, 3)`` (rows a, b, c), ``t`` is ``(B,)`` and ``edges`` the
        ``(E, 2)`` atom pairs of :func:`~matfuse.crystals.diffusion.data.pair_edges`.
        ``conditions`` is ``(B, width)`` standardised rows (base conditions, then adapter
        ones; :meth:`DenoiserConfig.widths`), NaN for "no condition"; ``None`` means
        unconditional for every cell.
        """
        c = self.config
        temb = self.time(time_embedding(t, c.time_dim))  # (B, H)
        base_w, adapter_w = c.widths()
        if (c.n_conditions or c.adapter_kinds) and conditions is None:
            conditions = torch.full(
                (len(n_atoms), sum(base_w) + sum(adapter_w)),
                float("nan"),
                dtype=temb.dtype,
                device=temb.device,
            )
        adapter = None
        if conditions is not None:
            blocks = list(torch.split(conditions, base_w + adapter_w, dim=1))
            if c.n_conditions:
                temb = temb + _present_sum(
                    self.condition_mlps, blocks[: len(base_w)], self.null_condition, temb
                )
            if c.adapter_kinds:
                adapter = _present_sum(self.adapter_embeddings, blocks[len(base_w) :], None, temb)[
                    graph
                ]
        h = self.inp(torch.cat([self.embed(atom_types), temb[graph]], dim=-1))
        i, j = edges[:, 0], edges[:, 1]
        lat = (lattice_features(lattice, n_atoms) - self.lattice_mean) / self.lattice_std
        lat = lat[graph[i]]
        edge_extra = torch.cat([lat, fourier_features(frac[j] - frac[i], c.n_frequencies)], dim=-1)
        degree = n_atoms[graph].to(h.dtype)
        for k, layer in enumerate(self.layers):
            if adapter is not None and self.adapter_mixins is not None:
                h = h + self.adapter_mixins[k](adapter)
            h = layer(h, edges, edge_extra, degree)
        h = self.out_norm(h)
        pooled = torch.zeros(len(n_atoms), h.shape[1], dtype=h.dtype, device=h.device)
        pooled = pooled.index_add_(0, graph, h) / n_atoms.to(h.dtype).unsqueeze(-1)
        logits = self.type_head(h) if self.type_head is not None else None
        return self.coord_head(h), self.lattice_head(pooled), logits
