"""Colours for the latent map's target: perceptually uniform, diverging only when signed.

Gradio's scatter plot colours a numeric column with Vega's default ramp and offers no way to
name a scheme, so the target is binned into ordered classes (quantiles: each colour holds
about as many points) and each class gets a colour of a matplotlib colour map through
``color_map``: **viridis** (perceptually uniform, readable in grey and by most colour-blind
readers) for ordinary targets, **RdBu_r** centred on zero for signed targets whose values
straddle zero (a formation energy, a residual), where the sign is the message. A target
with a handful of distinct values (a 0/1 class) keeps one colour per value. The tooltip
still shows each point's exact value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import to_hex

__all__ = ["TargetColours", "target_colours"]

#: Classes of a continuous target (quantile bins); few enough to tell apart.
N_BINS = 7
#: Distinct values up to which a target is coloured value by value.
MAX_DISCRETE = 8
SEQUENTIAL = "viridis"
DIVERGING = "RdBu_r"
MISSING = "no label"


@dataclass
class TargetColours:
    """Per-row class labels, the colour of each class, and which colour map was used."""

    labels: list[str]
    colours: dict[str, str]
    scheme: str

    @property
    def note(self) -> str:
        if self.scheme == DIVERGING:
            return f"colour: {DIVERGING} centred on 0 (the target is signed)"
        return f"colour: {SEQUENTIAL} (perceptually uniform), {len(self.colours)} classes"


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def is_signed(values: np.ndarray) -> bool:
    """Whether zero sits well inside the values: the 10th percentile is below it and the
    90th above, so both signs are common and a diverging map is the honest choice."""
    lo, hi = np.quantile(values, [0.1, 0.9])
    return bool(lo < 0.0 < hi)


def target_colours(values: np.ndarray | None) -> TargetColours | None:
    """Class labels and colours for a target column (``None``: nothing to colour by)."""
    if values is None:
        return None
    y = np.asarray(values, dtype=float)
    finite = y[np.isfinite(y)]
    if finite.size == 0:
        return None
    distinct = np.unique(finite)
    signed = is_signed(finite)
    cmap = colormaps[DIVERGING if signed else SEQUENTIAL]
    if distinct.size <= MAX_DISCRETE:
        edges = None
        names = [f"{i + 1}: {_fmt(v)}" for i, v in enumerate(distinct)]
        centres = distinct
    else:
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, N_BINS + 1)))
        names = [
            f"{i + 1}: {_fmt(edges[i])} to {_fmt(edges[i + 1])}" for i in range(len(edges) - 1)
        ]
        centres = (edges[:-1] + edges[1:]) / 2
    if signed:
        scale = float(np.max(np.abs(finite))) or 1.0
        positions = 0.5 + 0.5 * np.asarray(centres) / scale
    else:
        positions = np.linspace(0.0, 1.0, len(names)) if len(names) > 1 else np.array([0.5])
    colours = {name: to_hex(cmap(float(p))) for name, p in zip(names, positions, strict=True)}
    labels: list[str] = []
    for v in y:
        if not np.isfinite(v):
            labels.append(MISSING)
        elif edges is None:
            labels.append(names[int(np.searchsorted(distinct, v))])
        else:
            k = int(np.clip(np.searchsorted(edges, v, side="right") - 1, 0, len(names) - 1))
            labels.append(names[k])
    if MISSING in labels:
        colours[MISSING] = "#bbbbbb"
    return TargetColours(labels=labels, colours=colours, scheme=DIVERGING if signed else SEQUENTIAL)
