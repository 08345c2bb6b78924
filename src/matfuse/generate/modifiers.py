"""Score modifiers: map a raw property value to a desirability in [0, 1].

These are GuacaMol's modifiers (Brown et al. 2019, ``guacamol/score_modifier.py``), written from
their published definitions. Objectives use the same functions for their RDKit terms, so a
"TPSA above 100" term in a spec and the osimertinib MPO's TPSA term are one piece of code.
All accept numpy arrays and return arrays of the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "ClippedScoreModifier",
    "GaussianModifier",
    "MaxGaussianModifier",
    "MinGaussianModifier",
    "Modifier",
    "ThresholdedLinearModifier",
    "WindowModifier",
]


class Modifier:
    """Base class: ``modifier(x) -> desirability`` elementwise."""

    def __call__(self, x: np.ndarray | float) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class ClippedScoreModifier(Modifier):
    """Linear from (lower_x, low_score) to (upper_x, high_score), clipped to that score range.

    ``upper_x < lower_x`` gives a decreasing ramp (used for "minimise" terms).
    """

    upper_x: float
    lower_x: float = 0.0
    high_score: float = 1.0
    low_score: float = 0.0

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        slope = (self.high_score - self.low_score) / (self.upper_x - self.lower_x)
        y = self.low_score + slope * (x - self.lower_x)
        lo, hi = sorted((self.low_score, self.high_score))
        return np.clip(y, lo, hi)


@dataclass(frozen=True)
class GaussianModifier(Modifier):
    """exp(-((x - mu) / sigma)^2 / 2): 1 at the target value, falling off on both sides."""

    mu: float
    sigma: float

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        return np.exp(-0.5 * ((x - self.mu) / self.sigma) ** 2)


@dataclass(frozen=True)
class MinGaussianModifier(Modifier):
    """1 for x <= mu, Gaussian fall-off above: "at most mu" (e.g. logP under 4)."""

    mu: float
    sigma: float

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        return np.where(x <= self.mu, 1.0, GaussianModifier(self.mu, self.sigma)(x))


@dataclass(frozen=True)
class MaxGaussianModifier(Modifier):
    """1 for x >= mu, Gaussian fall-off below: "at least mu" (e.g. TPSA over 100)."""

    mu: float
    sigma: float

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        return np.where(x >= self.mu, 1.0, GaussianModifier(self.mu, self.sigma)(x))


@dataclass(frozen=True)
class ThresholdedLinearModifier(Modifier):
    """min(x, threshold) / threshold: linear credit up to a threshold."""

    threshold: float

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        return np.minimum(x, self.threshold) / self.threshold


@dataclass(frozen=True)
class WindowModifier(Modifier):
    """1 inside [low, high]; outside, Gaussian decay with width ``sigma`` (0 = hard step).

    Either bound may be None (a one-sided threshold such as "QED > 0.6").
    """

    low: float | None = None
    high: float | None = None
    sigma: float = 0.0

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        below = (self.low - x) if self.low is not None else np.full_like(x, -np.inf)
        above = (x - self.high) if self.high is not None else np.full_like(x, -np.inf)
        distance = np.maximum(np.maximum(below, above), 0.0)
        if self.sigma <= 0:
            out = (distance <= 0).astype(float)
        else:
            out = np.exp(-0.5 * (distance / self.sigma) ** 2)
        return np.where(np.isnan(x), np.nan, out)
