"""Monotone transforms of a regression target, chosen from the training labels.

Why: squared-error learners (every tree booster's default, forests, kernel ridge, GPs) spend
their capacity on the few labels that lie hundreds of interquartile ranges from the rest. On a
heavy-tailed materials target (elastic anisotropy, exfoliation energy, refractive index,
energy above hull) the leaves next to such a label are pulled far off, and the model can end up
with a larger MAE than predicting the training median. Fitting on a compressed target and
mapping predictions back removes that pull without touching the model code.

The transform used is the **signed log** of robust z-scores::

    u = (y - median) / s,   s = IQR / 1.349 (the standard deviation of a Gaussian with that IQR)
    t = sign(u) * log1p(|u|)                 inverse: y = median + s * sign(t) * expm1(|t|)

It is the identity to first order within about one robust standard deviation of the median and
logarithmic beyond, on both sides, so it handles negative values and two-sided tails (which
``log`` and Box-Cox do not), needs no fitted shape parameter (Yeo-Johnson's can overflow on
its inverse for values far in the tails), and is stored as two floats.

When (``"auto"``): the target is heavy-tailed when ``tail_weight``, the fourth moment of the
robust z-scores divided by a Gaussian's (3), exceeds :data:`TAIL_WEIGHT_THRESHOLD`. Being built
on the median and IQR, it flags both many moderately far labels and a handful of extreme ones
(where the ordinary kurtosis, standardised by a std the outliers inflate, stays small).
The threshold was chosen on the shared composition benchmarks (default encoders and model,
``benchmarks/results/defaults_vs_baseline.md``): the six sets with a tail weight above 60
(thermal expansion 63, AFLOW energy 72, thermal conductivity 979, jdft2d >2000, dielectric
>5000, e_hull 75,000) all had a 4-26% lower MAE with the transform (without it jdft2d loses to
the training median on 2 of 5 folds); phonons (30-43 over its folds) lost up to 24% and the
sets below 20 lost up to 4%. 50 sits between the two groups.

Since a monotone increasing map preserves order, conformal intervals computed on the
transformed scale keep their coverage when their bounds are mapped back. Predictions on the
transformed scale are approximately conditional medians once mapped back, which is what MAE
rewards (and the RMSE of the mean may be worse; pass ``target_transform="none"`` for that).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "TAIL_WEIGHT_THRESHOLD",
    "TARGET_TRANSFORMS",
    "TargetTransform",
    "choose_target_transform",
    "robust_location_scale",
    "tail_weight",
]

logger = logging.getLogger(__name__)

#: Accepted values of ``PropertyEstimator(target_transform=...)``.
TARGET_TRANSFORMS: tuple[str, ...] = ("auto", "none", "signed-log")
#: ``tail_weight`` above which ``auto`` uses the signed log (see the module docstring).
TAIL_WEIGHT_THRESHOLD = 50.0
#: Converts an interquartile range to the standard deviation of a Gaussian with that IQR.
_IQR_TO_SIGMA = 1.349
#: Converts the mean absolute deviation to the standard deviation of a Gaussian with that MAD.
_MEAN_ABS_TO_SIGMA = math.sqrt(math.pi / 2.0)


def robust_location_scale(y: NDArray[np.float64]) -> tuple[float, float]:
    """Median and a robust scale: IQR/1.349, else the scaled mean absolute deviation, else 1.

    The fallback matters for zero-inflated targets (band gaps of metals), where more than half
    the labels can be identical and the IQR is 0.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.size == 0:
        return 0.0, 1.0
    center = float(np.median(y))
    q1, q3 = np.quantile(y, [0.25, 0.75])
    scale = float(q3 - q1) / _IQR_TO_SIGMA
    if not (np.isfinite(scale) and scale > 0.0):
        scale = float(np.mean(np.abs(y - center))) * _MEAN_ABS_TO_SIGMA
    if not (np.isfinite(scale) and scale > 0.0):
        scale = 1.0
    return center, scale


def tail_weight(y: NDArray[np.float64]) -> float:
    """Fourth moment of the robust z-scores relative to a Gaussian's: ~1 for Gaussian labels.

    A Laplace target gives about 7, Student-t with 5 degrees of freedom about 6; a target with
    1% of its labels 100 robust standard deviations out gives over 10^5.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.size < 2:
        return float("nan")
    center, scale = robust_location_scale(y)
    z = (y - center) / scale
    return float(np.mean(z**4) / 3.0)


@dataclass(frozen=True)
class TargetTransform:
    """A fitted monotone target transform: ``identity`` or ``signed-log`` around (center, scale).

    ``tail_weight`` and ``reason`` record why it was chosen, for reports; they do not change
    the mapping. :meth:`to_dict` / :meth:`from_dict` give the JSON form persistence stores.
    """

    name: str = "identity"
    center: float = 0.0
    scale: float = 1.0
    tail_weight: float | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        if self.name not in ("identity", "signed-log"):
            raise ValueError(f"unknown target transform {self.name!r}")
        if not (math.isfinite(self.scale) and self.scale > 0.0):
            raise ValueError(f"transform scale must be positive and finite, got {self.scale}")

    @property
    def is_identity(self) -> bool:
        return self.name == "identity"

    def forward(self, y: NDArray[np.float64]) -> NDArray[np.float64]:
        """Original units -> the scale the model is fitted on."""
        if self.is_identity:
            return y
        u = (np.asarray(y, dtype=np.float64) - self.center) / self.scale
        return np.sign(u) * np.log1p(np.abs(u))

    def inverse(self, t: NDArray[np.float64]) -> NDArray[np.float64]:
        """The fitted scale -> original units (exact inverse of :meth:`forward`)."""
        if self.is_identity:
            return t
        t = np.asarray(t, dtype=np.float64)
        return self.center + self.scale * np.sign(t) * np.expm1(np.abs(t))

    def inverse_derivative(self, t: NDArray[np.float64]) -> NDArray[np.float64]:
        """d inverse / dt, for carrying a spread on the fitted scale to original units."""
        if self.is_identity:
            return np.ones_like(np.asarray(t, dtype=np.float64))
        return self.scale * np.exp(np.abs(np.asarray(t, dtype=np.float64)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (what reports show and ``config.json`` stores)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TargetTransform:
        """Inverse of :meth:`to_dict`; ``None`` (a model saved before transforms) -> identity."""
        if not data:
            return cls()
        weight = data.get("tail_weight")
        return cls(
            name=str(data.get("name", "identity")),
            center=float(data.get("center", 0.0)),
            scale=float(data.get("scale", 1.0)),
            tail_weight=None if weight is None else float(weight),
            reason=str(data.get("reason", "")),
        )


def choose_target_transform(y: NDArray[np.float64], requested: str = "auto") -> TargetTransform:
    """The transform for one regression target's training labels (finite values only).

    ``"auto"``: signed log when :func:`tail_weight` exceeds :data:`TAIL_WEIGHT_THRESHOLD`,
    identity otherwise. ``"none"``: identity. ``"signed-log"``: always the signed log.
    """
    if requested not in TARGET_TRANSFORMS:
        raise ValueError(f"target_transform must be one of {TARGET_TRANSFORMS}, got {requested!r}")
    y = np.asarray(y, dtype=np.float64)
    y = y[np.isfinite(y)]
    weight = tail_weight(y)
    recorded = weight if math.isfinite(weight) else None
    if requested == "none":
        return TargetTransform(tail_weight=recorded, reason="target_transform='none'")
    center, scale = robust_location_scale(y)
    if requested == "signed-log":
        return TargetTransform(
            "signed-log", center, scale, recorded, reason="target_transform='signed-log'"
        )
    if weight > TAIL_WEIGHT_THRESHOLD:  # NaN (fewer than 2 labels) is not heavy-tailed
        reason = (
            f"heavy-tailed: tail weight {weight:.3g} > {TAIL_WEIGHT_THRESHOLD:g} "
            "(4th moment of robust z-scores / Gaussian's); fitted on the signed log"
        )
        logger.info("target transform: %s", reason)
        return TargetTransform("signed-log", center, scale, recorded, reason=reason)
    shown = "undefined" if recorded is None else f"{weight:.3g}"
    return TargetTransform(
        tail_weight=recorded,
        reason=f"tail weight {shown} <= {TAIL_WEIGHT_THRESHOLD:g}: labels used as they are",
    )
