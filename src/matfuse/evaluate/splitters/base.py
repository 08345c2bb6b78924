"""Train/valid/test splitters that return index arrays.

How a data set is split decides what a reported number means: a random split measures
interpolation among close analogues, a scaffold or cluster split measures transfer to
new chemotypes, and a property-tail split measures extrapolation in the target. All
splitters here share one contract so that the pipeline can swap them by name:

* ``split(items, y=None) -> Split`` with ``train``/``valid``/``test`` as sorted int
  index arrays that together contain every row exactly once;
* deterministic for a given ``seed`` (NumPy ``default_rng``), independent of global state;
* rows whose SMILES is missing or invalid go to **train**. They are masked out of
  training anyway, and keeping them out of valid/test means the evaluation sets contain
  only molecules that can actually be scored. Items may also be RDKit molecules (e.g.
  already-standardised ones, ``None`` for rejected rows), which skips re-parsing and
  keeps the notion of "valid" identical to the caller's;
* ``valid_size``/``test_size`` are fractions of the *eligible* rows (valid SMILES, and a
  finite target for :class:`PropertyOODSplitter`), rounded half up. Group splitters
  (scaffold, cluster) never exceed the requested valid/test counts and may fall short by
  less than one group; a group that fits nowhere goes to train so that one huge scaffold
  cannot swallow the test set.
"""

from __future__ import annotations

import inspect
import math
import numbers
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from matfuse.registry import Registry

__all__ = [
    "SPLITTERS",
    "GroupSplitter",
    "Split",
    "Splitter",
    "assign_groups",
    "balanced_order",
    "build_splitter",
    "check_fractions",
    "check_y",
    "groups_from_keys",
    "make_split",
    "split_counts",
]

_PARTS = ("train", "valid", "test")


@dataclass(frozen=True, eq=False)
class Split:
    """Row indices of one train/valid/test partition.

    Index arrays are stored sorted as ``int64``. ``info`` carries splitter-specific facts
    worth reporting (number of scaffolds or clusters, whether clustering was approximate).
    """

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    name: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for part in _PARTS:
            arr = np.sort(np.asarray(getattr(self, part), dtype=np.int64).ravel())
            object.__setattr__(self, part, arr)

    @property
    def sizes(self) -> dict[str, int]:
        return {part: int(getattr(self, part).size) for part in _PARTS}

    @property
    def n(self) -> int:
        """Number of rows covered by the split."""
        return sum(self.sizes.values())

    def labels(self) -> np.ndarray:
        """Per-row ``"train"``/``"valid"``/``"test"`` strings (inverse of PredefinedSplitter)."""
        out = np.empty(self.n, dtype=object)
        for part in _PARTS:
            out[getattr(self, part)] = part
        return out


class Splitter(ABC):
    """Base class: sklearn-style constructor parameters, one ``split`` method.

    ``needs`` names the input kind whose objects the splitter reads (``None``: it looks
    only at which rows are valid, and at ``y``). ``split`` accepts a parsed batch of any
    kind that converts to ``needs`` (a structure batch serves a composition splitter), or
    raw values, which are parsed as that kind (as SMILES when ``needs`` is ``None``).
    """

    name: ClassVar[str]
    needs: ClassVar[str | None] = None

    def split(self, items: Any, y: np.ndarray | None = None) -> Split:
        """Partition the rows of ``items`` (and ``y``, if the splitter uses it)."""
        batch = self.rows(items)
        check_y(y, len(batch))
        return self._split(batch, y)

    def rows(self, items: Any) -> Any:
        """``items`` as a batch of the kind this splitter needs."""
        from matfuse.inputs import as_batch

        if isinstance(items, str):
            raise TypeError("items must be a sequence of inputs, not a single string")
        try:
            return as_batch(items, self.needs, standardize="none")
        except TypeError as exc:
            raise TypeError(f"the {self.name} split needs {self.needs} inputs: {exc}") from None

    @abstractmethod
    def _split(self, batch: Any, y: np.ndarray | None) -> Split:
        """Partition a parsed batch."""

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters, for logging a run's configuration."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {p: getattr(self, p) for p in names}

    def describe(self, split: Split) -> str:
        """One sentence saying what this split held out (shown in the terminal and report)."""
        sizes = split.sizes
        return (
            f"{self.name} split: {sizes['train']} train, {sizes['valid']} valid, "
            f"{sizes['test']} test rows"
        )

    def _held_out(self, split: Split, what: str) -> str:
        """``"<name> split: test = <n> rows <what>, <n> train, <n> valid"``."""
        sizes = split.sizes
        return (
            f"{self.name} split: test = {sizes['test']} rows {what}, "
            f"{sizes['train']} train, {sizes['valid']} valid"
        )

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if k != "labels")
        return f"{type(self).__name__}({args})"


#: Every splitter by name; tags: ``rows`` (any kind) or the kind the splitter needs.
SPLITTERS: Registry[type[Splitter]] = Registry("splitter", loader="matfuse.evaluate.splitters")


def register_splitter(cls: type[Splitter], description: str = "") -> type[Splitter]:
    """Add a splitter class to :data:`SPLITTERS` under its ``name``."""
    doc = (cls.__doc__ or "").strip().splitlines()
    SPLITTERS.add(
        cls.name,
        cls,
        description=description or (doc[0] if doc else ""),
        tags={cls.needs or "rows"},
    )
    return cls


# --------------------------------------------------------------------------- helpers


def check_fractions(valid_size: float, test_size: float) -> None:
    for label, value in (("valid_size", valid_size), ("test_size", test_size)):
        if not (isinstance(value, numbers.Real) and 0.0 <= value < 1.0):
            raise ValueError(f"{label} must be a fraction in [0, 1), got {value!r}")
    if valid_size + test_size >= 1.0:
        raise ValueError(f"valid_size + test_size must be < 1, got {valid_size + test_size}")


def round_half_up(x: float) -> int:
    # Python's round() is banker's rounding, which makes 0.5 -> 0 and surprises users.
    return int(math.floor(x + 0.5))


def split_counts(n_eligible: int, valid_size: float, test_size: float) -> tuple[int, int]:
    return round_half_up(valid_size * n_eligible), round_half_up(test_size * n_eligible)


def check_y(y: np.ndarray | None, n: int) -> None:
    if y is not None and len(y) != n:
        raise ValueError(f"y has {len(y)} rows but the inputs have {n}")


def make_split(n: int, valid: np.ndarray, test: np.ndarray, name: str, **info: Any) -> Split:
    """Everything not in valid/test is train, which is how rows are never lost."""
    in_eval = np.zeros(n, dtype=bool)
    in_eval[valid] = True
    in_eval[test] = True
    return Split(np.flatnonzero(~in_eval), valid, test, name, dict(info))


def assign_groups(
    groups: list[np.ndarray], n_eligible: int, n_valid: int, n_test: int
) -> tuple[np.ndarray, np.ndarray]:
    """First-fit whole groups into train, then valid, then test; overflow goes to train.

    ``groups`` is in priority order (largest/"big" first), so train takes the big groups
    and valid/test are filled from the remainder. Returns ``(valid, test)`` indices.
    """
    capacity = {"train": n_eligible - n_valid - n_test, "valid": n_valid, "test": n_test}
    filled = {"train": 0, "valid": 0, "test": 0}
    chosen: dict[str, list[np.ndarray]] = {"valid": [], "test": []}
    for group in groups:
        size = int(group.size)
        target = next((p for p in _PARTS if filled[p] + size <= capacity[p]), "train")
        filled[target] += size
        if target != "train":
            chosen[target].append(group)
    for part, requested in (("valid", n_valid), ("test", n_test)):
        if requested > 0 and filled[part] == 0:
            warnings.warn(
                f"{part} split is empty: every remaining group is larger than the "
                f"{requested} rows requested (largest group: "
                f"{max((g.size for g in groups), default=0)} rows)",
                stacklevel=3,
            )

    def cat(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

    return cat(chosen["valid"]), cat(chosen["test"])


def balanced_order(
    groups: list[np.ndarray], n_valid: int, n_test: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """chemprop's balanced order: groups too big for valid/test first, each part shuffled.

    A group counts as big when it exceeds half of the valid or the test target; putting
    those first sends them to train, so valid/test are made of many small groups and
    land close to the requested size.
    """
    big = [g for g in groups if g.size > n_valid / 2 or g.size > n_test / 2]
    small = [g for g in groups if not (g.size > n_valid / 2 or g.size > n_test / 2)]
    return [big[i] for i in rng.permutation(len(big))] + [
        small[i] for i in rng.permutation(len(small))
    ]


def groups_from_keys(rows: np.ndarray, keys: Sequence[Any]) -> list[np.ndarray]:
    """Group ``rows`` by ``keys`` (aligned), groups in order of first appearance."""
    index: dict[Any, list[int]] = {}
    for row, key in zip(rows.tolist(), keys, strict=True):
        index.setdefault(key, []).append(row)
    return [np.asarray(v, dtype=np.int64) for v in index.values()]


#: the default of a parameter that has none (it must be given)
REQUIRED = inspect.Parameter.empty


def parameters_of(cls: type[Splitter]) -> dict[str, Any]:
    """A splitter class's constructor parameters and their defaults (``REQUIRED`` if none).

    What front ends read to offer only the options a splitter takes (a k-fold split has
    no ``test_size``, a predefined split no ``seed``) instead of trying and catching.
    """
    params = inspect.signature(cls.__init__).parameters
    return {name: p.default for name, p in params.items() if name != "self"}


def build_splitter(cls: type[Splitter], params: dict[str, Any]) -> Splitter:
    """``cls(**params)``, but an unknown parameter names the accepted ones."""
    accepted = list(parameters_of(cls))
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise TypeError(
            f"{cls.name} splitter got unknown parameter(s) {unknown}; accepted: {accepted}"
        )
    return cls(**params)


class GroupSplitter(Splitter):
    """Groups stay whole: subclasses give a group key per row; balanced assignment and
    group k-fold (:meth:`folds`) are shared."""

    def __init__(self, valid_size: float = 0.1, test_size: float = 0.1, seed: int = 0) -> None:
        check_fractions(valid_size, test_size)
        self.valid_size = valid_size
        self.test_size = test_size
        self.seed = seed

    def _keys(self, batch: Any) -> list[Any]:
        """Group key per row, ``None`` for rows that cannot be grouped (they go to train)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def _prepare(self, batch: Any) -> tuple[int, np.ndarray, list[Any]]:
        keys = self._keys(batch)
        eligible = np.flatnonzero([k is not None for k in keys])
        return len(batch), eligible, [keys[i] for i in eligible]

    def _split(self, batch: Any, y: np.ndarray | None) -> Split:
        n, eligible, keys = self._prepare(batch)
        groups = groups_from_keys(eligible, keys)
        n_valid, n_test = split_counts(eligible.size, self.valid_size, self.test_size)
        groups = balanced_order(groups, n_valid, n_test, np.random.default_rng(self.seed))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            valid, test = assign_groups(groups, eligible.size, n_valid, n_test)
        if test.size == 0 and n_test > 0 and len(groups) >= 2:
            # Few, large groups (a handful of space groups): rather than an empty test set,
            # hold out the smallest group, even if it is bigger than test_size asked for.
            smallest = min(groups, key=lambda g: g.size)
            test, valid = smallest, np.setdiff1d(valid, smallest)
            caught = [w for w in caught if "test split is empty" not in str(w.message)]
        if valid.size == 0 and n_valid > 0 and len(groups) >= 3:
            # the same for valid (early stopping, conformal calibration need rows): the
            # smallest group not already held out, as long as two groups stay in train
            held = set(test.tolist())
            rest = [g for g in groups if not held.intersection(g.tolist())]
            if len(rest) >= 2:
                valid = min(rest, key=lambda g: g.size)
                caught = [w for w in caught if "valid split is empty" not in str(w.message)]
        for w in caught:
            warnings.warn(w.message, stacklevel=2)
        return make_split(n, valid, test, self.name, n_groups=len(groups))

    #: what one group is, in the split's one-line description
    group_noun: ClassVar[str] = "group"

    def describe(self, split: Split) -> str:
        n_groups = split.info.get("n_groups")
        of = f" (of {n_groups} in all)" if n_groups is not None else ""
        return self._held_out(split, f"whose {self.group_noun}s{of} never occur in train")

    def folds(
        self, items: Sequence[Any], y: np.ndarray | None = None, n_folds: int = 5
    ) -> list[Split]:
        """Group k-fold: each fold's test set is a set of whole groups, folds cover all rows.

        Groups go largest first to the fold with the fewest rows so far (scikit-learn's
        ``GroupKFold``), ties broken with ``seed``. Valid is a random ``valid_size`` share
        of each fold's training rows. With fewer groups than ``n_folds`` it raises, since
        some fold would have no test rows.
        """
        batch = self.rows(items)
        check_y(y, len(batch))
        n, eligible, keys = self._prepare(batch)
        groups = groups_from_keys(eligible, keys)
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
            out.append(make_split(n, valid, test, self.name, fold=k, n_groups_test=len(parts)))
        return out
