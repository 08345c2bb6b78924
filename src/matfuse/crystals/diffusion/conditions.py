"""Generation conditions: scalar properties, space group and chemical system.

Three kinds, as MatterGen conditions on:

- ``scalar``: a numeric column of the training table (``heat_ref``, ``band_gap``...). The
  denoiser sees it standardised with its training mean and standard deviation (stored in the
  model directory), so a target is written in the table's units and the network's input
  stays near unit scale whatever the property.
- ``space_group``: the international number (1-230) of each training cell, found by spglib
  (``symprec`` 0.1 A, pymatgen's default) from the structure itself; a target may be a number
  or a Hermann-Mauguin symbol (``Pm-3m``).
- ``chemical_system``: which elements the cell holds, as a multi-hot vector over atomic
  numbers, derived from the structure; a target is written ``Sr-Ti-O``.

The names ``space_group`` and ``chemical_system`` always mean the derived kinds; any other
name is a numeric column. Values travel as one float row per crystal, each condition taking
:func:`kind_width` columns, NaN meaning "no condition" (the learned null embedding that
classifier-free guidance contrasts with).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from pymatgen.core import Structure

__all__ = [
    "CHEMICAL_SYSTEM",
    "DERIVED_KINDS",
    "SCALAR",
    "SPACE_GROUP",
    "ConditionScaler",
    "encode_condition",
    "kind_of",
    "kind_width",
    "parse_conditions",
    "structure_condition",
]

SCALAR = "scalar"
SPACE_GROUP = "space_group"
CHEMICAL_SYSTEM = "chemical_system"
#: Condition names computed from each training structure rather than read from a column.
DERIVED_KINDS = {SPACE_GROUP: SPACE_GROUP, CHEMICAL_SYSTEM: CHEMICAL_SYSTEM}
#: Atomic numbers 1..103 (the denoiser's element vocabulary; 0 is unused here).
_N_ELEMENTS = 104


def kind_of(name: str) -> str:
    """The kind a condition name stands for (see the module docstring)."""
    return DERIVED_KINDS.get(name, SCALAR)


def kind_width(kind: str) -> int:
    """Columns a condition of this kind takes in a condition row."""
    if kind == CHEMICAL_SYSTEM:
        return _N_ELEMENTS
    if kind in (SCALAR, SPACE_GROUP):
        return 1
    raise ValueError(f"unknown condition kind {kind!r}")


def _space_group_number(value: float | str) -> int:
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("+-").isdigit():
            value = float(text)
        else:
            from pymatgen.symmetry.groups import SpaceGroup

            try:
                return int(SpaceGroup(text).int_number)
            except ValueError:
                raise ValueError(
                    f"space_group {value!r}: not a space-group symbol (e.g. Pm-3m) or number"
                ) from None
    number = float(value)
    if not number.is_integer() or not 1 <= number <= 230:
        raise ValueError(f"space_group {value!r}: give a number from 1 to 230")
    return int(number)


def _chemical_system_row(value: float | str) -> list[float]:
    from pymatgen.core import Element

    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"chemical_system {value!r}: write the elements as Sr-Ti-O")
    row = [0.0] * _N_ELEMENTS
    for symbol in value.replace(",", "-").split("-"):
        symbol = symbol.strip()
        try:
            z = Element(symbol).Z
        except ValueError:
            raise ValueError(f"chemical_system {value!r}: unknown element {symbol!r}") from None
        if z >= _N_ELEMENTS:
            raise ValueError(f"chemical_system {value!r}: {symbol} (Z={z}) is beyond Z <= 103")
        row[z] = 1.0
    return row


def encode_condition(kind: str, value: float | str) -> list[float]:
    """One condition's raw columns for ``value``; ``ValueError`` (one line) when unusable."""
    if kind == SPACE_GROUP:
        return [float(_space_group_number(value))]
    if kind == CHEMICAL_SYSTEM:
        return _chemical_system_row(value)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
    if not math.isfinite(float(value)):
        raise ValueError(f"{value!r}: the value must be finite")
    return [float(value)]


def structure_condition(kind: str, structure: Structure) -> list[float]:
    """The derived columns of one structure (``space_group`` or ``chemical_system``)."""
    if kind == SPACE_GROUP:
        from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

        try:
            number = SpacegroupAnalyzer(structure, symprec=0.1).get_space_group_number()
        except Exception:  # spglib gives up on some distorted cells: unconditioned, not dropped
            return [math.nan]
        return [float(number)]
    if kind == CHEMICAL_SYSTEM:
        row = [0.0] * _N_ELEMENTS
        for el in structure.composition.elements:
            z = int(getattr(el, "Z", 0))
            if 0 < z < _N_ELEMENTS:
                row[z] = 1.0
        return row
    raise ValueError(f"{kind!r} is not derived from the structure")


@dataclass
class ConditionScaler:
    """The conditions a model knows, by name and kind, and how scalars are standardised.

    ``kinds`` is empty in model directories written before space-group and chemical-system
    conditions existed: every condition is then a scalar.
    """

    names: list[str]
    mean: list[float]
    std: list[float]
    kinds: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.kinds:
            self.kinds = [SCALAR] * len(self.names)

    @property
    def widths(self) -> list[int]:
        return [kind_width(k) for k in self.kinds]

    @property
    def width(self) -> int:
        return sum(self.widths)

    @classmethod
    def fit(
        cls, names: Sequence[str], values: torch.Tensor, kinds: Sequence[str] | None = None
    ) -> ConditionScaler:
        """From a ``(B, width)`` table of raw rows (NaN ignored; std floored at 1e-6).

        Only scalars are standardised; the categorical kinds keep mean 0 and std 1.
        """
        kinds = list(kinds) if kinds else [SCALAR] * len(names)
        mean, std = [], []
        col_start = 0
        for kind in kinds:
            m, s = 0.0, 1.0
            if kind == SCALAR:
                col = values[:, col_start]
                col = col[~torch.isnan(col)]
                m = float(col.mean()) if len(col) else 0.0
                s = float(col.std(unbiased=False)) if len(col) > 1 else 1.0
            mean.append(m)
            std.append(max(s, 1e-6))
            col_start += kind_width(kind)
        return cls(names=list(names), mean=mean, std=std, kinds=kinds)

    def concat(self, other: ConditionScaler) -> ConditionScaler:
        """This model's conditions followed by ``other``'s (a base model's and its adapters')."""
        return ConditionScaler(
            names=self.names + other.names,
            mean=self.mean + other.mean,
            std=self.std + other.std,
            kinds=self.kinds + other.kinds,
        )

    def transform(self, raw: torch.Tensor) -> torch.Tensor:
        """Standardise the scalar columns of ``(B, width)`` raw rows (the others pass)."""
        mean, std = [], []
        for kind, m, s in zip(self.kinds, self.mean, self.std, strict=True):
            width = kind_width(kind)
            mean += [m if kind == SCALAR else 0.0] * width
            std += [s if kind == SCALAR else 1.0] * width
        mean_t = torch.tensor(mean, dtype=raw.dtype, device=raw.device)
        std_t = torch.tensor(std, dtype=raw.dtype, device=raw.device)
        return (raw - mean_t) / std_t

    def row(self, targets: Mapping[str, float | str]) -> torch.Tensor:
        """``(width,)`` raw values for the named targets, NaN (unconditioned) for the others.

        ``ValueError`` (one line) for a condition the model was not trained on or a value
        its kind cannot take.
        """
        unknown = sorted(set(targets) - set(self.names))
        if unknown:
            known = ", ".join(self.names) or "none"
            raise ValueError(f"model has no condition {', '.join(unknown)} (it knows: {known})")
        out: list[float] = []
        for name, kind in zip(self.names, self.kinds, strict=True):
            if name not in targets:
                out += [math.nan] * kind_width(kind)
                continue
            try:
                out += encode_condition(kind, targets[name])
            except ValueError as exc:
                message = str(exc)
                prefix = "" if message.startswith(name) else f"{name}: "
                raise ValueError(f"--condition {prefix}{message}") from None
        return torch.tensor(out, dtype=torch.float64)


def parse_conditions(items: Sequence[str]) -> dict[str, float | str]:
    """``["heat_ref=-0.5", "chemical_system=Sr-Ti-O"]`` -> ``{"heat_ref": -0.5,
    "chemical_system": "Sr-Ti-O"}``: numbers become floats, other values stay text for
    their kind to read (:meth:`ConditionScaler.row`). ``ValueError`` (one line) when
    malformed."""
    out: dict[str, float | str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ValueError(f"--condition {item!r}: write NAME=VALUE, e.g. heat_ref=-0.5")
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            out[name.strip()] = text
            continue
        if not math.isfinite(number):
            raise ValueError(f"--condition {item!r}: the value must be finite")
        out[name.strip()] = number
    return out
