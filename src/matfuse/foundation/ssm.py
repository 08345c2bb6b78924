"""Selective state-space (Mamba-style) blocks in plain PyTorch.

Mamba ships fused CUDA kernels; this is the same model written with tensor operations, so
it runs (and is tested) on a CPU. The block follows Mamba-2 (Dao & Gu 2024): per head a
scalar decay, input-dependent step Δ_t and input-dependent B_t, C_t (the "selective" part):

    h_t = exp(Δ_t a) h_{t-1} + Δ_t B_t x_tᵀ,        y_t = C_tᵀ h_t + D x_t.

For molecule-length sequences the recurrence is computed in its equivalent "dual" form, one
masked matrix product per head, y = (L ∘ C Bᵀ) (Δ x) with L_ts = exp(Σ_{s<r≤t} Δ_r a), which
is fast on any hardware; :func:`ssd_recurrent` is the step-by-step reference used in tests.
Layers alternate direction, so the stack sees both sides of every token.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def ssd_dual(
    x: torch.Tensor, dt: torch.Tensor, a: torch.Tensor, B: torch.Tensor, C: torch.Tensor
) -> torch.Tensor:
    """Selective scan in matrix form. x (b, l, h, p); dt (b, l, h); a (h,); B, C (b, l, n)."""
    length = x.shape[1]
    log_decay = (dt * a).transpose(1, 2)  # (b, h, l), all ≤ 0
    cum = torch.cumsum(log_decay, dim=-1)
    segment = cum.unsqueeze(-1) - cum.unsqueeze(-2)  # (b, h, t, s) = Σ_{s<r≤t}
    causal = torch.ones(length, length, dtype=torch.bool, device=x.device).tril()
    decay = torch.exp(segment.masked_fill(~causal, float("-inf")))
    scores = torch.einsum("btn,bsn->bts", C, B).unsqueeze(1) * decay  # (b, h, t, s)
    xdt = (x * dt.unsqueeze(-1)).transpose(1, 2)  # (b, h, s, p)
    return torch.matmul(scores, xdt).transpose(1, 2)  # (b, t, h, p)


def ssd_recurrent(
    x: torch.Tensor, dt: torch.Tensor, a: torch.Tensor, B: torch.Tensor, C: torch.Tensor
) -> torch.Tensor:
    """The same recurrence, one step at a time (reference implementation)."""
    b, length, h, p = x.shape
    state = x.new_zeros(b, h, p, B.shape[-1])
    ys = []
    for t in range(length):
        decay = torch.exp(dt[:, t] * a)  # (b, h)
        update = (dt[:, t, :, None] * x[:, t]).unsqueeze(-1) * B[:, t, None, None, :]
        state = decay[..., None, None] * state + update
        ys.append(torch.einsum("bhpn,bn->bhp", state, C[:, t]))
    return torch.stack(ys, dim=1)


class MambaBlock(nn.Module):
    """Pre-norm residual block: projection, short causal conv, selective scan, gate."""

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        head_dim: int = 32,
        reverse: bool = False,
    ) -> None:
        super().__init__()
        self.d_inner = expand * d_model
        self.n_heads = max(1, self.d_inner // head_dim)
        self.head_dim = self.d_inner // self.n_heads
        self.d_state, self.reverse = d_state, reverse
        conv_dim = self.d_inner + 2 * d_state
        self.norm = nn.LayerNorm(d_model)
        self.in_proj = nn.Linear(d_model, self.d_inner + conv_dim + self.n_heads)
        self.conv = nn.Conv1d(conv_dim, conv_dim, d_conv, groups=conv_dim, padding=d_conv - 1)
        self.dt_bias = nn.Parameter(
            torch.log(torch.expm1(torch.linspace(1e-3, 1e-1, self.n_heads)))
        )
        self.A_log = nn.Parameter(torch.log(torch.linspace(1.0, 16.0, self.n_heads)))
        self.D = nn.Parameter(torch.ones(self.n_heads))
        self.out_norm = nn.LayerNorm(self.d_inner)
        self.out_proj = nn.Linear(self.d_inner, d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (b, l, d_model); mask (b, l), True on real tokens (padding is kept at zero)."""
        residual = x
        if self.reverse:
            x, mask = x.flip(1), mask.flip(1)
        keep = mask.unsqueeze(-1).to(x.dtype)
        b, length, _ = x.shape
        gate, xbc, dt = self.in_proj(self.norm(x)).split(
            [self.d_inner, self.d_inner + 2 * self.d_state, self.n_heads], dim=-1
        )
        xbc = self.conv((xbc * keep).transpose(1, 2))[..., :length].transpose(1, 2)
        xbc = F.silu(xbc) * keep  # padding contributes nothing to the state
        u, B, C = xbc.split([self.d_inner, self.d_state, self.d_state], dim=-1)
        u = u.view(b, length, self.n_heads, self.head_dim)
        dt = F.softplus(dt + self.dt_bias)
        y = ssd_dual(u, dt, -torch.exp(self.A_log), B, C) + u * self.D[:, None]
        y = self.out_proj(self.out_norm(y.reshape(b, length, self.d_inner)) * F.silu(gate))
        if self.reverse:
            y = y.flip(1)
        return residual + y


class MambaStack(nn.Module):
    """Bidirectional stack: even layers scan left to right, odd layers right to left."""

    def __init__(self, d_model: int, n_layers: int, d_state: int = 16, expand: int = 2) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            MambaBlock(d_model, d_state=d_state, expand=expand, reverse=bool(i % 2))
            for i in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, mask)
        return self.norm(x)
