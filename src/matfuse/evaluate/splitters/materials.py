"""Splitters for materials: space-group-disjoint, element hold-out and chemical systems.

What each split measures, for the extrapolation benchmark:

* ``spacegroup`` — no test space group occurs in train: transfer to new structure types;
* ``element`` — every test material contains one held-out element absent from train;
* ``chemsys`` — chemical systems (e.g. ``Cl-Na``) stay whole: no test system in train.

The element and chemical-system splitters read compositions, so structure tables serve
them too (a structure batch converts to its compositions). Each also has ``folds(items)``
for group k-fold cross-validation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from matfuse.evaluate.splitters.base import (
    GroupSplitter,
    Split,
    check_y,
    make_split,
    register_splitter,
)

__all__ = ["ChemicalSystemSplitter", "ElementHoldoutSplitter", "SpaceGroupSplitter"]


def _element_sets(batch: Any) -> list[frozenset[str] | None]:
    return [
        frozenset(el.symbol for el in comp.elements) if comp is not None else None
        for comp in batch.objects
    ]


class SpaceGroupSplitter(GroupSplitter):
    """Space-group-disjoint split: no test space group occurs in train.

    Needs structures; rows whose symmetry analysis fails go to train. Space groups are
    found with spglib at ``symprec``/``angle_tolerance``; pass ``space_groups`` (one number
    per row, e.g. from :func:`analyze_symmetry` run once for several splits) to skip it.
    A data set with few space groups (perov_5 has five) gives few, uneven groups: use
    :meth:`folds` for leave-groups-out cross-validation there.
    """

    name: ClassVar[str] = "spacegroup"
    group_noun: ClassVar[str] = "space group"
    needs: ClassVar[str | None] = "structure"

    def __init__(
        self,
        valid_size: float = 0.1,
        test_size: float = 0.1,
        seed: int = 0,
        symprec: float = 0.1,  # = matfuse.materials.symmetry.DEFAULT_SYMPREC (loads pymatgen)
        angle_tolerance: float = 5.0,  # = DEFAULT_ANGLE_TOLERANCE there
        space_groups: Sequence[int | None] | None = None,
    ) -> None:
        super().__init__(valid_size, test_size, seed)
        self.symprec = symprec
        self.angle_tolerance = angle_tolerance
        self.space_groups = space_groups

    def rows(self, items: Any) -> Any:
        if self.space_groups is not None:  # given space groups: only validity is needed
            from matfuse.inputs import as_batch

            return as_batch(items, None)
        return super().rows(items)

    def _keys(self, parsed: Any) -> list[Any]:
        from matfuse.materials.symmetry import analyze_symmetry

        if self.space_groups is not None:
            if len(self.space_groups) != len(parsed):
                raise ValueError(f"{len(self.space_groups)} space groups for {len(parsed)} rows")
            return [
                int(g) if g is not None and np.isfinite(g) and ok else None
                for g, ok in zip(self.space_groups, parsed.valid, strict=True)
            ]
        table = analyze_symmetry(parsed, symprec=self.symprec, angle_tolerance=self.angle_tolerance)
        return table.numbers


class ElementHoldoutSplitter(GroupSplitter):
    """Leave-one-element-out: test = every valid row that contains ``element``.

    Train holds no material with that element, so the model must extrapolate to unseen
    chemistry. Valid is a random ``valid_size`` share of the other rows; ``test_size`` is
    not used (the element decides the test size). :meth:`folds` gives one split per
    element occurring in at least ``min_count`` rows.
    """

    name: ClassVar[str] = "element"
    needs: ClassVar[str | None] = "composition"

    def __init__(
        self, element: str = "O", valid_size: float = 0.1, seed: int = 0, min_count: int = 1
    ) -> None:
        super().__init__(valid_size, 0.0, seed)
        self.element = element
        self.min_count = min_count

    def _keys(self, parsed: Any) -> list[Any]:
        return _element_sets(parsed)

    def _split_for(self, n: int, eligible: np.ndarray, sets: list[Any], element: str) -> Split:
        has = np.array([element in s for s in sets], dtype=bool)
        test = eligible[has]
        rest = eligible[~has]
        rng = np.random.default_rng(self.seed)
        n_valid = int(np.floor(self.valid_size * rest.size + 0.5))
        valid = rng.choice(rest, size=n_valid, replace=False)
        return make_split(n, valid, test, self.name, element=element)

    def _split(self, batch: Any, y: np.ndarray | None) -> Split:
        n, eligible, sets = self._prepare(batch)
        return self._split_for(n, eligible, sets, self.element)

    def describe(self, split: Split) -> str:
        element = split.info.get("element", self.element)
        return (
            f"element split: test = every material containing {element} "
            f"({split.sizes['test']} rows; choose the element with element=...), "
            f"{split.sizes['train']} train, {split.sizes['valid']} valid"
        )

    def folds(  # type: ignore[override]
        self, items: Sequence[Any], y: np.ndarray | None = None
    ) -> list[Split]:
        """One split per element present in at least ``min_count`` valid rows (by Z order)."""
        from pymatgen.core import Element

        batch = self.rows(items)
        check_y(y, len(batch))
        n, eligible, sets = self._prepare(batch)
        counts: dict[str, int] = {}
        for s in sets:
            for el in s:
                counts[el] = counts.get(el, 0) + 1
        elements = sorted(
            (el for el, c in counts.items() if c >= self.min_count), key=lambda e: Element(e).Z
        )
        return [self._split_for(n, eligible, sets, el) for el in elements]


class ChemicalSystemSplitter(GroupSplitter):
    """Chemical-system split: all materials of one system (``Cl-Na``) stay on one side.

    Stricter than a formula-level split (NaCl and Na2Cl3 share a side) and looser than
    leaving an element out. Groups are assigned like the balanced scaffold split.
    """

    name: ClassVar[str] = "chemsys"
    group_noun: ClassVar[str] = "chemical system"
    needs: ClassVar[str | None] = "composition"

    def _keys(self, parsed: Any) -> list[Any]:
        return ["-".join(sorted(s)) if s is not None else None for s in _element_sets(parsed)]


for _cls in (SpaceGroupSplitter, ElementHoldoutSplitter, ChemicalSystemSplitter):
    register_splitter(_cls)
