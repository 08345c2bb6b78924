"""Splitters for materials: space-group-disjoint, element hold-out and chemical systems.

They follow the contract of :mod:`matfuse.evaluate.splitters` (``split(items, y) ->
Split``, every row exactly once, invalid rows in train, deterministic for a ``seed``) and
reuse its group-assignment helpers. Items are structures, compositions, formula/CIF text,
parsed records (:class:`ParsedStructures`/:class:`ParsedCompositions`) or ``None`` for
rejected rows. The random and property-OOD splitters are not re-implemented: use
:func:`make_material_splitter`, which wraps those of :mod:`matfuse.evaluate.splitters`.

What each split measures, for the extrapolation benchmark:

* ``spacegroup`` — no test space group occurs in train: transfer to new structure types;
* ``element`` — every test material contains one held-out element absent from train;
* ``chemsys`` — chemical systems (e.g. ``Cl-Na``) stay whole: no test system in train.

Each group splitter also has ``folds(items)`` for group k-fold cross-validation.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from rdkit import Chem

from matfuse.evaluate.splitters import (
    Split,
    Splitter,
    _assign_groups,
    _balanced_order,
    _check_fractions,
    _check_y,
    _counts,
    _groups_from_keys,
    _make_split,
    build_splitter,
    make_splitter,
)
from matfuse.materials.compositions import ParsedCompositions, to_composition
from matfuse.materials.symmetry import (
    DEFAULT_ANGLE_TOLERANCE,
    DEFAULT_SYMPREC,
    analyze_symmetry,
)
from matfuse.materials.table import ParsedMaterials, parse_materials

__all__ = [
    "ChemicalSystemSplitter",
    "ElementHoldoutSplitter",
    "MaterialSplitter",
    "SpaceGroupSplitter",
    "list_material_splitters",
    "make_material_splitter",
]


def _parsed(items: Any) -> ParsedMaterials:
    if isinstance(items, str):
        raise TypeError("items must be a sequence of materials, not a single string")
    return parse_materials(items)


def _element_sets(parsed: ParsedMaterials) -> list[frozenset[str] | None]:
    out: list[frozenset[str] | None] = []
    for obj in parsed.objects:
        comp = to_composition(obj)[0] if obj is not None else None
        out.append(frozenset(el.symbol for el in comp.elements) if comp is not None else None)
    return out


# A stand-in for a valid row: the molecule splitters count a row as valid when it is an RDKit
# molecule, so valid materials become this placeholder and invalid ones None.
_VALID = Chem.MolFromSmiles("C")


class MaterialSplitter(Splitter):
    """Run a row-only splitter of :mod:`matfuse.evaluate.splitters` on materials.

    ``random``, ``ood`` and ``predefined`` look only at which rows are valid (and at
    ``y``), never at the molecules themselves, so they serve materials unchanged once each
    row is mapped to "valid" or "invalid"; this wrapper does that mapping.
    """

    def __init__(self, splitter: Splitter) -> None:
        self.splitter = splitter

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.splitter.name

    def split(self, items: Sequence[Any], y: np.ndarray | None = None) -> Split:
        parsed = _parsed(items)
        proxies = [_VALID if ok else None for ok in parsed.valid]
        return self.splitter.split(proxies, y)

    def get_params(self) -> dict[str, Any]:
        return self.splitter.get_params()

    def __repr__(self) -> str:
        return f"MaterialSplitter({self.splitter!r})"


class _GroupSplitter(Splitter):
    """Shared logic: group keys per row, balanced assignment, group k-fold."""

    def __init__(self, valid_size: float = 0.1, test_size: float = 0.1, seed: int = 0) -> None:
        _check_fractions(valid_size, test_size)
        self.valid_size = valid_size
        self.test_size = test_size
        self.seed = seed

    def _keys(self, parsed: ParsedMaterials) -> list[Any]:
        """Group key per row, ``None`` for rows that cannot be grouped (they go to train)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def _prepare(self, items: Any, y: np.ndarray | None) -> tuple[int, np.ndarray, list[Any]]:
        parsed = _parsed(items)
        _check_y(y, len(parsed))
        keys = self._keys(parsed)
        eligible = np.flatnonzero([k is not None for k in keys])
        return len(parsed), eligible, [keys[i] for i in eligible]

    def split(self, items: Sequence[Any], y: np.ndarray | None = None) -> Split:
        n, eligible, keys = self._prepare(items, y)
        groups = _groups_from_keys(eligible, keys)
        n_valid, n_test = _counts(eligible.size, self.valid_size, self.test_size)
        groups = _balanced_order(groups, n_valid, n_test, np.random.default_rng(self.seed))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            valid, test = _assign_groups(groups, eligible.size, n_valid, n_test)
        if test.size == 0 and n_test > 0 and len(groups) >= 2:
            # Few, large groups (a handful of space groups): rather than an empty test set,
            # hold out the smallest group, even if it is bigger than test_size asked for.
            smallest = min(groups, key=lambda g: g.size)
            test, valid = smallest, np.setdiff1d(valid, smallest)
            caught = [w for w in caught if "test split is empty" not in str(w.message)]
        for w in caught:
            warnings.warn(w.message, stacklevel=2)
        return _make_split(n, valid, test, self.name, n_groups=len(groups))

    def folds(
        self, items: Sequence[Any], y: np.ndarray | None = None, n_folds: int = 5
    ) -> list[Split]:
        """Group k-fold: each fold's test set is a set of whole groups, folds cover all rows.

        Groups go largest first to the fold with the fewest rows so far (scikit-learn's
        ``GroupKFold``), ties broken with ``seed``. Valid is a random ``valid_size`` share
        of each fold's training rows. With fewer groups than ``n_folds`` it raises, since
        some fold would have no test rows.
        """
        n, eligible, keys = self._prepare(items, y)
        groups = _groups_from_keys(eligible, keys)
        if len(groups) < n_folds:
            raise ValueError(f"{len(groups)} groups cannot make {n_folds} group-disjoint folds")
        rng = np.random.default_rng(self.seed)
        order = sorted(range(len(groups)), key=lambda g: (-groups[g].size, rng.random()))
        fold_rows: list[list[np.ndarray]] = [[] for _ in range(n_folds)]
        sizes = np.zeros(n_folds, dtype=np.int64)
        for g in order:
            k = int(np.argmin(sizes))
            fold_rows[k].append(groups[g])
            sizes[k] += groups[g].size
        out = []
        for k, parts in enumerate(fold_rows):
            test = np.concatenate(parts)
            rest = np.setdiff1d(eligible, test)
            n_valid = int(np.floor(self.valid_size * rest.size + 0.5))
            valid = rng.choice(rest, size=n_valid, replace=False)
            out.append(_make_split(n, valid, test, self.name, fold=k, n_groups_test=len(parts)))
        return out


class SpaceGroupSplitter(_GroupSplitter):
    """Space-group-disjoint split: no test space group occurs in train.

    Needs structures; rows whose symmetry analysis fails go to train. Space groups are
    found with spglib at ``symprec``/``angle_tolerance``; pass ``space_groups`` (one number
    per row, e.g. from :func:`analyze_symmetry` run once for several splits) to skip it.
    A data set with few space groups (perov_5 has five) gives few, uneven groups: use
    :meth:`folds` for leave-groups-out cross-validation there.
    """

    name: ClassVar[str] = "spacegroup"

    def __init__(
        self,
        valid_size: float = 0.1,
        test_size: float = 0.1,
        seed: int = 0,
        symprec: float = DEFAULT_SYMPREC,
        angle_tolerance: float = DEFAULT_ANGLE_TOLERANCE,
        space_groups: Sequence[int | None] | None = None,
    ) -> None:
        super().__init__(valid_size, test_size, seed)
        self.symprec = symprec
        self.angle_tolerance = angle_tolerance
        self.space_groups = space_groups

    def _keys(self, parsed: ParsedMaterials) -> list[Any]:
        if self.space_groups is not None:
            if len(self.space_groups) != len(parsed):
                raise ValueError(f"{len(self.space_groups)} space groups for {len(parsed)} rows")
            return [
                int(g) if g is not None and np.isfinite(g) and ok else None
                for g, ok in zip(self.space_groups, parsed.valid, strict=True)
            ]
        if isinstance(parsed, ParsedCompositions):
            raise TypeError("a space-group split needs structures, not compositions")
        table = analyze_symmetry(parsed, symprec=self.symprec, angle_tolerance=self.angle_tolerance)
        return table.numbers


class ElementHoldoutSplitter(_GroupSplitter):
    """Leave-one-element-out: test = every valid row that contains ``element``.

    Train holds no material with that element, so the model must extrapolate to unseen
    chemistry. Valid is a random ``valid_size`` share of the other rows; ``test_size`` is
    not used (the element decides the test size). :meth:`folds` gives one split per
    element occurring in at least ``min_count`` rows.
    """

    name: ClassVar[str] = "element"

    def __init__(
        self, element: str = "O", valid_size: float = 0.1, seed: int = 0, min_count: int = 1
    ) -> None:
        super().__init__(valid_size, 0.0, seed)
        self.element = element
        self.min_count = min_count

    def _keys(self, parsed: ParsedMaterials) -> list[Any]:
        return _element_sets(parsed)

    def _split_for(self, n: int, eligible: np.ndarray, sets: list[Any], element: str) -> Split:
        has = np.array([element in s for s in sets], dtype=bool)
        test = eligible[has]
        rest = eligible[~has]
        rng = np.random.default_rng(self.seed)
        n_valid = int(np.floor(self.valid_size * rest.size + 0.5))
        valid = rng.choice(rest, size=n_valid, replace=False)
        return _make_split(n, valid, test, self.name, element=element)

    def split(self, items: Sequence[Any], y: np.ndarray | None = None) -> Split:
        n, eligible, sets = self._prepare(items, y)
        return self._split_for(n, eligible, sets, self.element)

    def folds(  # type: ignore[override]
        self, items: Sequence[Any], y: np.ndarray | None = None
    ) -> list[Split]:
        """One split per element present in at least ``min_count`` valid rows (by Z order)."""
        from pymatgen.core import Element

        n, eligible, sets = self._prepare(items, y)
        counts: dict[str, int] = {}
        for s in sets:
            for el in s:
                counts[el] = counts.get(el, 0) + 1
        elements = sorted(
            (el for el, c in counts.items() if c >= self.min_count), key=lambda e: Element(e).Z
        )
        return [self._split_for(n, eligible, sets, el) for el in elements]


class ChemicalSystemSplitter(_GroupSplitter):
    """Chemical-system split: all materials of one system (``Cl-Na``) stay on one side.

    Stricter than a formula-level split (NaCl and Na2Cl3 share a side) and looser than
    leaving an element out. Groups are assigned like the balanced scaffold split.
    """

    name: ClassVar[str] = "chemsys"

    def _keys(self, parsed: ParsedMaterials) -> list[Any]:
        return ["-".join(sorted(s)) if s is not None else None for s in _element_sets(parsed)]


_GROUP_SPLITTERS: dict[str, type[_GroupSplitter]] = {
    cls.name: cls for cls in (SpaceGroupSplitter, ElementHoldoutSplitter, ChemicalSystemSplitter)
}
_WRAPPED = ("random", "ood", "predefined")


def list_material_splitters() -> list[str]:
    """Names accepted by :func:`make_material_splitter`."""
    return sorted([*_GROUP_SPLITTERS, *_WRAPPED])


def make_material_splitter(name: str, **params: Any) -> Splitter:
    """Build a materials splitter by name: ``spacegroup``, ``element``, ``chemsys``, or the
    row-only ``random``/``ood``/``predefined`` of :mod:`matfuse.evaluate.splitters`.

    Unknown parameters raise ``TypeError`` naming the accepted ones, as ``make_splitter`` does.
    """
    key = str(name).strip().lower()
    if key in _WRAPPED:
        return MaterialSplitter(make_splitter(key, **params))
    cls = _GROUP_SPLITTERS.get(key)
    if cls is None:
        choices = ", ".join(list_material_splitters())
        raise ValueError(f"unknown materials splitter {name!r}; choose from {choices}")
    return build_splitter(cls, params)
