"""Scalar property conditions: parsing ``heat_ref=-0.5`` and standardising values.

The denoiser sees each property standardised with its training mean and standard deviation
(stored in the model directory), so a guidance target is written in the table's units and
the network's input stays near unit scale whatever the property.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["ConditionScaler", "parse_conditions"]


@dataclass
class ConditionScaler:
    """Per-property mean and standard deviation, by name (order = the network's inputs)."""

    names: list[str]
    mean: list[float]
    std: list[float]

    @classmethod
    def fit(cls, names: Sequence[str], values: torch.Tensor) -> ConditionScaler:
        """From a ``(B, K)`` table of raw values (NaN ignored; std floored at 1e-6)."""
        mean, std = [], []
        for k in range(len(names)):
            col = values[:, k]
            col = col[~torch.isnan(col)]
            m = float(col.mean()) if len(col) else 0.0
            s = float(col.std(unbiased=False)) if len(col) > 1 else 1.0
            mean.append(m)
            std.append(max(s, 1e-6))
        return cls(names=list(names), mean=mean, std=std)

    def transform(self, raw: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, dtype=raw.dtype, device=raw.device)
        std = torch.tensor(self.std, dtype=raw.dtype, device=raw.device)
        return (raw - mean) / std

    def row(self, targets: dict[str, float]) -> torch.Tensor:
        """``(K,)`` raw values for the named targets, NaN (unconditioned) for the others.

        ``ValueError`` for a property the model was not trained on.
        """
        unknown = sorted(set(targets) - set(self.names))
        if unknown:
            known = ", ".join(self.names) or "none"
            raise ValueError(f"model has no condition {', '.join(unknown)} (it knows: {known})")
        return torch.tensor([float(targets.get(n, math.nan)) for n in self.names])


def parse_conditions(items: Sequence[str]) -> dict[str, float]:
    """``["heat_ref=-0.5"]`` -> ``{"heat_ref": -0.5}``; ``ValueError`` (one line) when malformed."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--condition {item!r}: write NAME=VALUE, e.g. heat_ref=-0.5")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"--condition {item!r}: {value!r} is not a number") from None
        if not math.isfinite(number):
            raise ValueError(f"--condition {item!r}: the value must be finite")
        out[name.strip()] = number
    return out
