"""Splitters that look only at which rows are valid (and at the targets): any input kind.

A random split measures interpolation among close analogues; a property-tail split
measures extrapolation in the target; a predefined split keeps the files a data set came
in; k-fold gives every valid row one turn in test, for cross-validation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np

from matfuse.evaluate.splitters.base import (
    Split,
    Splitter,
    check_fractions,
    check_y,
    make_split,
    register_splitter,
    split_counts,
)

__all__ = ["KFoldSplitter", "PredefinedSplitter", "PropertyOODSplitter", "RandomSplitter"]


class RandomSplitter(Splitter):
    """Uniformly random split of the valid rows: the optimistic, interpolation case."""

    name = "random"

    def __init__(self, valid_size: float = 0.1, test_size: float = 0.1, seed: int = 0) -> None:
        check_fractions(valid_size, test_size)
        self.valid_size = valid_size
        self.test_size = test_size
        self.seed = seed

    def _split(self, batch: Any, y: np.ndarray | None) -> Split:
        eligible = np.flatnonzero(batch.valid)
        n_valid, n_test = split_counts(eligible.size, self.valid_size, self.test_size)
        perm = np.random.default_rng(self.seed).permutation(eligible)
        return make_split(len(batch), perm[n_test : n_test + n_valid], perm[:n_test], self.name)

    def describe(self, split: Split) -> str:
        return self._held_out(split, f"drawn at random ({self.test_size:.0%}, seed {self.seed})")


class KFoldSplitter(Splitter):
    """k-fold cross-validation over the valid rows: :meth:`folds` gives ``n_folds`` splits.

    ``split`` returns the first fold, so that a k-fold splitter can stand where one split
    is wanted; :func:`matfuse.workflow.cross_validate` uses every fold.
    """

    name = "kfold"

    def __init__(self, n_folds: int = 5, valid_size: float = 0.0, seed: int = 0) -> None:
        if int(n_folds) < 2:
            raise ValueError(f"n_folds must be at least 2, got {n_folds}")
        check_fractions(valid_size, 0.0)
        self.n_folds = int(n_folds)
        self.valid_size = valid_size
        self.seed = seed

    def _split(self, batch: Any, y: np.ndarray | None) -> Split:
        return self._folds(batch)[0]

    def folds(self, items: Any, y: np.ndarray | None = None) -> list[Split]:
        batch = self.rows(items)
        check_y(y, len(batch))
        return self._folds(batch)

    def _folds(self, batch: Any) -> list[Split]:
        rng = np.random.default_rng(self.seed)
        eligible = rng.permutation(np.flatnonzero(batch.valid))
        if eligible.size < self.n_folds:
            raise ValueError(f"{eligible.size} valid rows cannot make {self.n_folds} folds")
        out = []
        for k, test in enumerate(np.array_split(eligible, self.n_folds)):
            rest = np.setdiff1d(eligible, test)
            n_valid = int(np.floor(self.valid_size * rest.size + 0.5))
            valid = rng.choice(rest, size=n_valid, replace=False)
            out.append(make_split(len(batch), valid, test, self.name, fold=k))
        return out

    def describe(self, split: Split) -> str:
        if "fold" in split.info:  # one fold standing where one split is wanted
            return self._held_out(split, f"of fold {split.info['fold'] + 1} of {self.n_folds}")
        return f"{self.n_folds}-fold cross-validation over {split.n} rows"


class PropertyOODSplitter(Splitter):
    """Test set = the extreme tail of one target: can the model extrapolate?

    ``tail="top"`` takes the largest values, ``"bottom"`` the smallest, ``"both"`` half
    from each end (the extra row from the top). Ties at the boundary are broken randomly
    with ``seed``. Valid is a random sample of the remaining rows, so model selection
    does not peek at the tail. Rows with a NaN target or an invalid input go to train.
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
        check_fractions(valid_size, test_size)
        if tail not in ("top", "bottom", "both"):
            raise ValueError(f"tail must be 'top', 'bottom' or 'both', got {tail!r}")
        self.test_size = test_size
        self.valid_size = valid_size
        self.tail = tail
        self.target_index = target_index
        self.seed = seed

    def split(self, items: Any, y: np.ndarray | None = None) -> Split:
        if y is None:
            raise ValueError("PropertyOODSplitter needs the targets y")
        return super().split(items, y)

    def _split(self, batch: Any, y: np.ndarray | None) -> Split:
        values = np.asarray(y, dtype=np.float64)
        if values.ndim == 2:
            values = values[:, self.target_index]
        elif values.ndim != 1:
            raise ValueError(f"y must be 1-D or 2-D, got shape {values.shape}")
        ok = np.asarray(batch.valid, dtype=bool) & np.isfinite(values)
        eligible = np.flatnonzero(ok)
        n_valid, n_test = split_counts(eligible.size, self.valid_size, self.test_size)
        rng = np.random.default_rng(self.seed)
        # ascending by value, random order among equal values
        ranked = eligible[np.lexsort((rng.random(eligible.size), values[eligible]))]
        n_bottom = {"top": 0, "bottom": n_test, "both": n_test // 2}[self.tail]
        n_top = n_test - n_bottom
        test = np.concatenate([ranked[:n_bottom], ranked[ranked.size - n_top :]])
        rest = ranked[n_bottom : ranked.size - n_top]
        valid = rng.choice(rest, size=n_valid, replace=False)
        bounds = {}
        if test.size:
            bounds = {"test_min": float(values[test].min()), "test_max": float(values[test].max())}
        return make_split(len(batch), valid, test, self.name, tail=self.tail, **bounds)

    def describe(self, split: Split) -> str:
        info = split.info
        where = {"top": "largest", "bottom": "smallest", "both": "largest and smallest"}
        text = (
            f"ood split: test = the {self.test_size:.0%} {where[self.tail]} target values "
            f"({split.sizes['test']} rows"
        )
        if "test_min" in info:
            text += f", {info['test_min']:.4g} to {info['test_max']:.4g}"
        return text + f"), {split.sizes['train']} train, {split.sizes['valid']} valid"


class PredefinedSplitter(Splitter):
    """Split given per row, e.g. the provided train/valid/test files concatenated.

    Labels are case-insensitive; ``val``/``validation``/``dev`` mean valid. Unlike the
    other splitters, rows with invalid inputs stay where the labels put them, so that the
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

    def rows(self, items: Any) -> Any:
        # only the row count matters: do not parse
        if isinstance(items, str):
            raise TypeError("items must be a sequence of inputs, not a single string")
        return items if hasattr(items, "__len__") else list(items)

    def _split(self, batch: Any, y: np.ndarray | None) -> Split:
        n = len(batch)
        if n != self._parts.size:
            raise ValueError(f"{self._parts.size} split labels for {n} rows")
        return Split(
            np.flatnonzero(self._parts == "train"),
            np.flatnonzero(self._parts == "valid"),
            np.flatnonzero(self._parts == "test"),
            self.name,
        )

    def describe(self, split: Split) -> str:
        return "the provided " + super().describe(split).replace("predefined split", "split")


for _cls in (RandomSplitter, KFoldSplitter, PropertyOODSplitter, PredefinedSplitter):
    register_splitter(_cls)
