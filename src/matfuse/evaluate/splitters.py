"""Train/valid/test splitters that return index arrays.

How a data set is split decides what a reported number means: a random split measures
interpolation among close analogues, a scaffold or cluster split measures transfer to
new chemotypes, and a property-tail split measures extrapolation in the target. All
splitters here share one contract so that the pipeline can swap them by name:

* ``split(smiles, y=None) -> Split`` with ``train``/``valid``/``test`` as sorted int
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
from typing import Any, ClassVar, Literal

import numpy as np
from rdkit import Chem

from matfuse.chem.scaffolds import murcko_scaffold, to_mol
from matfuse.chem.similarity import morgan_bitvect
from matfuse.evaluate.clustering import DEFAULT_MAX_EXACT, butina_clusters

__all__ = [
    "ClusterSplitter",
    "PredefinedSplitter",
    "PropertyOODSplitter",
    "RandomSplitter",
    "ScaffoldSplitter",
    "Split",
    "Splitter",
    "list_splitters",
    "make_splitter",
    "scaffold_overlap",
]

SmilesLike = str | Chem.Mol | None
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
    """Base class: sklearn-style constructor parameters, one ``split`` method."""

    name: ClassVar[str]

    @abstractmethod
    def split(self, smiles: Sequence[SmilesLike], y: np.ndarray | None = None) -> Split:
        """Partition the rows of ``smiles`` (and ``y``, if the splitter uses it)."""

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters, for logging a run's configuration."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {p: getattr(self, p) for p in names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if k != "labels")
        return f"{type(self).__name__}({args})"


# --------------------------------------------------------------------------- helpers


def _check_fractions(valid_size: float, test_size: float) -> None:
    for label, value in (("valid_size", valid_size), ("test_size", test_size)):
        if not (isinstance(value, numbers.Real) and 0.0 <= value < 1.0):
            raise ValueError(f"{label} must be a fraction in [0, 1), got {value!r}")
    if valid_size + test_size >= 1.0:
        raise ValueError(f"valid_size + test_size must be < 1, got {valid_size + test_size}")


def _round_half_up(x: float) -> int:
    # Python's round() is banker's rounding, which makes 0.5 -> 0 and surprises users.
    return int(math.floor(x + 0.5))


def _counts(n_eligible: int, valid_size: float, test_size: float) -> tuple[int, int]:
    return _round_half_up(valid_size * n_eligible), _round_half_up(test_size * n_eligible)


def _as_list(smiles: Sequence[SmilesLike]) -> list[Any]:
    if isinstance(smiles, str):
        raise TypeError("smiles must be a sequence of SMILES, not a single string")
    return list(smiles)


def _mols(smiles: Sequence[SmilesLike]) -> list[Chem.Mol | None]:
    return [to_mol(s) for s in _as_list(smiles)]


def _check_y(y: np.ndarray | None, n: int) -> None:
    if y is not None and len(y) != n:
        raise ValueError(f"y has {len(y)} rows but smiles has {n}")


def _make_split(n: int, valid: np.ndarray, test: np.ndarray, name: str, **info: Any) -> Split:
    """Everything not in valid/test is train, which is how rows are never lost."""
    in_eval = np.zeros(n, dtype=bool)
    in_eval[valid] = True
    in_eval[test] = True
    return Split(np.flatnonzero(~in_eval), valid, test, name, dict(info))


def _assign_groups(
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


def _balanced_order(
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


def _groups_from_keys(rows: np.ndarray, keys: Sequence[Any]) -> list[np.ndarray]:
    """Group ``rows`` by ``keys`` (aligned), groups in order of first appearance."""
    index: dict[Any, list[int]] = {}
    for row, key in zip(rows.tolist(), keys, strict=True):
        index.setdefault(key, []).append(row)
    return [np.asarray(v, dtype=np.int64) for v in index.values()]


# -------------------------------------------------------------------------- splitters


class RandomSplitter(Splitter):
    """Uniformly random split of the valid molecules: the optimistic, interpolation case."""

    name = "random"

    def __init__(self, valid_size: float = 0.1, test_size: float = 0.1, seed: int = 0) -> None:
        _check_fractions(valid_size, test_size)
        self.valid_size = valid_size
        self.test_size = test_size
        self.seed = seed

    def split(self, smiles: Sequence[SmilesLike], y: np.ndarray | None = None) -> Split:
        mols = _mols(smiles)
        _check_y(y, len(mols))
        eligible = np.flatnonzero([m is not None for m in mols])
        n_valid, n_test = _counts(eligible.size, self.valid_size, self.test_size)
        perm = np.random.default_rng(self.seed).permutation(eligible)
        return _make_split(len(mols), perm[n_test : n_test + n_valid], perm[:n_test], self.name)


class ScaffoldSplitter(Splitter):
    """Bemis–Murcko scaffold split: no test scaffold occurs in train.

    ``balanced=False`` is the deterministic DeepChem variant (scaffold sets sorted by
    size, largest to train, the smallest and rarest end up in test; ``seed`` is unused).
    ``balanced=True`` is chemprop's: sets bigger than half the valid or test size go to
    train first, the rest are shuffled with ``seed``, so test is a random sample of
    small scaffold sets instead of always the rarest ones. All acyclic molecules share
    the empty scaffold and form one group. ``generic=True`` groups by generic frameworks.
    """

    name = "scaffold"

    def __init__(
        self,
        valid_size: float = 0.1,
        test_size: float = 0.1,
        seed: int = 0,
        balanced: bool = True,
        generic: bool = False,
    ) -> None:
        _check_fractions(valid_size, test_size)
        self.valid_size = valid_size
        self.test_size = test_size
        self.seed = seed
        self.balanced = balanced
        self.generic = generic

    def split(self, smiles: Sequence[SmilesLike], y: np.ndarray | None = None) -> Split:
        mols = _mols(smiles)
        _check_y(y, len(mols))
        eligible = np.flatnonzero([m is not None for m in mols])
        keys = [murcko_scaffold(mols[i], generic=self.generic) for i in eligible]
        # A scaffold failure (None) on a parsable molecule is its own singleton group.
        keys = [k if k is not None else ("__unscaffoldable__", i) for i, k in enumerate(keys)]
        groups = _groups_from_keys(eligible, keys)
        n_valid, n_test = _counts(eligible.size, self.valid_size, self.test_size)
        if self.balanced:
            groups = _balanced_order(groups, n_valid, n_test, np.random.default_rng(self.seed))
        else:
            groups = sorted(groups, key=lambda g: (-g.size, int(g[0])))
        valid, test = _assign_groups(groups, eligible.size, n_valid, n_test)
        return _make_split(len(mols), valid, test, self.name, n_scaffolds=len(groups))


class ClusterSplitter(Splitter):
    """Butina-cluster split on Morgan (r=2, 2048) Tanimoto distance; clusters stay whole.

    Harder than a scaffold split when series share a core with different ring systems
    (and vice versa). Clusters are ordered like chemprop's balanced scaffold split (big
    clusters to train, the rest shuffled with ``seed``). Above ``max_exact`` molecules,
    clustering uses the sample + leader approximation of
    :mod:`matfuse.evaluate.clustering` (reported in ``Split.info["clustering"]``).
    """

    name = "cluster"

    def __init__(
        self,
        valid_size: float = 0.1,
        test_size: float = 0.1,
        seed: int = 0,
        cutoff: float = 0.6,
        max_exact: int = DEFAULT_MAX_EXACT,
    ) -> None:
        _check_fractions(valid_size, test_size)
        if not 0.0 <= cutoff <= 1.0:
            raise ValueError(f"cutoff must be a Tanimoto distance in [0, 1], got {cutoff}")
        self.valid_size = valid_size
        self.test_size = test_size
        self.seed = seed
        self.cutoff = cutoff
        self.max_exact = max_exact

    def split(self, smiles: Sequence[SmilesLike], y: np.ndarray | None = None) -> Split:
        mols = _mols(smiles)
        _check_y(y, len(mols))
        eligible = np.flatnonzero([m is not None for m in mols])
        fps = [morgan_bitvect(mols[i]) for i in eligible]
        clustering = butina_clusters(fps, self.cutoff, max_exact=self.max_exact, seed=self.seed)
        groups = _groups_from_keys(eligible, clustering.labels.tolist())
        n_valid, n_test = _counts(eligible.size, self.valid_size, self.test_size)
        groups = _balanced_order(groups, n_valid, n_test, np.random.default_rng(self.seed))
        valid, test = _assign_groups(groups, eligible.size, n_valid, n_test)
        return _make_split(
            len(mols),
            valid,
            test,
            self.name,
            n_clusters=clustering.n_clusters,
            clustering=clustering.method,
        )


class PropertyOODSplitter(Splitter):
    """Test set = the extreme tail of one target: can the model extrapolate?

    ``tail="top"`` takes the largest values, ``"bottom"`` the smallest, ``"both"`` half
    from each end (the extra row from the top). Ties at the boundary are broken randomly
    with ``seed``. Valid is a random sample of the remaining rows, so model selection
    does not peek at the tail. Rows with a NaN target or invalid SMILES go to train.
    """

    name = "ood"

    def __init__(
        self,
        test_size: float = 0.1,
        valid_size: float = 0.1,
        tail: Literal["top", "bottom", "both"] = "top",
        target_index: int = 0,
        seed: int = 0,
    ) -> None:
        _check_fractions(valid_size, test_size)
        if tail not in ("top", "bottom", "both"):
            raise ValueError(f"tail must be 'top', 'bottom' or 'both', got {tail!r}")
        self.test_size = test_size
        self.valid_size = valid_size
        self.tail = tail
        self.target_index = target_index
        self.seed = seed

    def split(self, smiles: Sequence[SmilesLike], y: np.ndarray | None = None) -> Split:
        if y is None:
            raise ValueError("PropertyOODSplitter needs the targets y")
        mols = _mols(smiles)
        _check_y(y, len(mols))
        values = np.asarray(y, dtype=np.float64)
        if values.ndim == 2:
            values = values[:, self.target_index]
        elif values.ndim != 1:
            raise ValueError(f"y must be 1-D or 2-D, got shape {values.shape}")
        ok = np.array([m is not None for m in mols], dtype=bool) & np.isfinite(values)
        eligible = np.flatnonzero(ok)
        n_valid, n_test = _counts(eligible.size, self.valid_size, self.test_size)
        rng = np.random.default_rng(self.seed)
        # ascending by value, random order among equal values
        ranked = eligible[np.lexsort((rng.random(eligible.size), values[eligible]))]
        n_bottom = {"top": 0, "bottom": n_test, "both": n_test // 2}[self.tail]
        n_top = n_test - n_bottom
        test = np.concatenate([ranked[:n_bottom], ranked[ranked.size - n_top :]])
        rest = ranked[n_bottom : ranked.size - n_top]
        valid = rng.choice(rest, size=n_valid, replace=False)
        return _make_split(len(mols), valid, test, self.name, tail=self.tail)


class PredefinedSplitter(Splitter):
    """Split given per row, e.g. the provided train/valid/test files concatenated.

    Labels are case-insensitive; ``val``/``validation``/``dev`` mean valid. Unlike the
    other splitters, rows with invalid SMILES stay where the labels put them, so that the
    provided test file maps one-to-one onto the test predictions.
    """

    name = "predefined"
    _ALIASES: ClassVar[dict[str, str]] = {
        "train": "train",
        "training": "train",
        "valid": "valid",
        "val": "valid",
        "validation": "valid",
        "dev": "valid",
        "test": "test",
        "testing": "test",
    }

    def __init__(self, labels: Sequence[str]) -> None:
        normalised = []
        for i, label in enumerate(labels):
            key = self._ALIASES.get(str(label).strip().lower())
            if key is None:
                raise ValueError(f"row {i}: split label {label!r} is not train/valid/test")
            normalised.append(key)
        self.labels = list(labels)
        self._parts = np.asarray(normalised, dtype=object)

    def split(self, smiles: Sequence[SmilesLike], y: np.ndarray | None = None) -> Split:
        n = len(_as_list(smiles))
        if n != self._parts.size:
            raise ValueError(f"{self._parts.size} split labels for {n} molecules")
        _check_y(y, n)
        return Split(
            np.flatnonzero(self._parts == "train"),
            np.flatnonzero(self._parts == "valid"),
            np.flatnonzero(self._parts == "test"),
            self.name,
        )


# ------------------------------------------------------------------------ registry

_REGISTRY: dict[str, type[Splitter]] = {
    cls.name: cls
    for cls in (
        RandomSplitter,
        ScaffoldSplitter,
        ClusterSplitter,
        PropertyOODSplitter,
        PredefinedSplitter,
    )
}


def list_splitters() -> list[str]:
    """Names accepted by :func:`make_splitter`."""
    return sorted(_REGISTRY)


def make_splitter(name: str, **params: Any) -> Splitter:
    """Build a splitter by name (``random``, ``scaffold``, ``cluster``, ``ood``, ``predefined``).

    Unknown names raise ``ValueError``; unknown parameters raise ``TypeError`` naming the
    parameters the splitter accepts, which is what a user editing a config needs to see.
    """
    cls = _REGISTRY.get(str(name).strip().lower())
    if cls is None:
        raise ValueError(f"unknown splitter {name!r}; choose from {', '.join(list_splitters())}")
    return build_splitter(cls, params)


def build_splitter(cls: type[Splitter], params: dict[str, Any]) -> Splitter:
    """``cls(**params)``, but an unknown parameter names the accepted ones."""
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise TypeError(
            f"{cls.name} splitter got unknown parameter(s) {unknown}; accepted: {accepted}"
        )
    return cls(**params)


def scaffold_overlap(
    train_smiles: Sequence[SmilesLike], test_smiles: Sequence[SmilesLike]
) -> float:
    """Fraction of test molecules with a ring scaffold whose scaffold also occurs in train.

    0.0 means the split is scaffold-disjoint; a random split typically gives well above
    0.5. Acyclic and invalid test molecules are not counted (the empty scaffold carries no
    chemotype information). NaN when no test molecule has a ring scaffold.
    """
    train_scaffolds = {s for s in (murcko_scaffold(x) for x in _as_list(train_smiles)) if s}
    test_scaffolds = [s for s in (murcko_scaffold(x) for x in _as_list(test_smiles)) if s]
    if not test_scaffolds:
        return float("nan")
    return sum(s in train_scaffolds for s in test_scaffolds) / len(test_scaffolds)
