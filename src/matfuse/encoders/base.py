"""The encoder contract shared by every modality.

An encoder is a scikit-learn transformer that turns a batch of inputs into a fixed-size
float matrix. Rows whose input is invalid come back as all-NaN rows, never dropped, so
that fusion and models can tell which block is missing for which row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from rdkit import Chem
from sklearn.base import BaseEstimator, TransformerMixin

#: Standardisation applied when an encoder receives raw SMILES (see ``encode``).
DIRECT_STANDARDIZATION = "none"


@dataclass
class EncodedBlock:
    """One encoder's output for a batch: values (NaN rows where invalid), mask and reasons."""

    name: str
    values: np.ndarray
    valid: np.ndarray
    errors: list[str | None]


def valid_rows(values: np.ndarray) -> np.ndarray:
    """Rows of an encoded matrix that carry data (invalid rows are entirely NaN)."""
    if values.shape[1] == 0:
        return np.ones(values.shape[0], dtype=bool)
    return ~np.isnan(values).all(axis=1)


class BaseEncoder(TransformerMixin, BaseEstimator):
    """Base class of all encoders, holding the one encode loop every modality shares.

    Subclasses set the class attributes ``name``, ``modality`` and ``pretrained`` and
    implement :meth:`dim` and :meth:`_compute_unique`. ``fit`` is a no-op for every encoder
    that has no data-dependent state, which is all of the fixed featurisers and the
    pretrained networks: they must behave the same on a train and a test set.

    The loop: inputs become a batch of the kind this encoder reads (parsed if raw,
    converted if of another kind: a structure batch gives its compositions to a
    composition encoder); each unique key (canonical SMILES, formula, structure hash) is
    computed once per batch, and with ``cache=True`` once across calls (worth it for slow
    encoders such as Mordred or neural networks).
    """

    name: ClassVar[str] = "base"
    modality: ClassVar[str] = "smiles"
    pretrained: ClassVar[bool] = False
    description: ClassVar[str] = ""
    #: Slow encoders cache results by key across calls by default.
    cache_by_default: ClassVar[bool] = False
    #: How raw inputs handed straight to this encoder are parsed.
    parse_options: ClassVar[dict[str, Any]] = {}

    @property
    def dim(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit(self, X: Any = None, y: Any = None) -> BaseEncoder:
        self.n_features_out_ = self.dim
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Encode a batch; invalid inputs give all-NaN rows."""
        return self.encode_block(X).values

    def encode(self, X: Any) -> np.ndarray:
        """The (n, dim) latent matrix of a batch (same as ``transform``)."""
        return self.transform(X)

    def _compute_unique(
        self, objects: list[Any], keys: list[str]
    ) -> tuple[np.ndarray, list[str | None]]:
        """Values and per-row errors for valid, unique objects (``len(objects)`` rows)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def _cache(self) -> dict[str, tuple[np.ndarray, str | None]] | None:
        if not getattr(self, "cache", self.cache_by_default):
            return None
        if not hasattr(self, "_feature_cache"):
            self._feature_cache: dict[str, tuple[np.ndarray, str | None]] = {}
        return self._feature_cache

    def as_batch(self, X: Any) -> Any:
        """``X`` as a parsed batch of the kind this encoder reads."""
        from matfuse.inputs import as_batch, encoder_kind

        return as_batch(X, encoder_kind(self.modality), **self.parse_options)

    def encode_block(self, X: Any) -> EncodedBlock:
        """Values plus the validity mask and a reason for every invalid row."""
        batch = self.as_batch(X)
        errors = list(batch.errors)
        keys = list(batch.keys)
        objects = list(batch.objects)
        n, d = len(errors), self.dim
        values = np.full((n, d), np.nan, dtype=np.float32)
        first: dict[str, int] = {}
        for i, key in enumerate(keys):
            if key is not None and errors[i] is None and key not in first:
                first[key] = i
        cache = self._cache()
        known: dict[str, tuple[np.ndarray, str | None]] = {}
        todo = []
        for k in first:
            if cache is not None and k in cache:
                known[k] = cache[k]
            else:
                todo.append(k)
        if todo:
            computed, errs = self._compute_unique([objects[first[k]] for k in todo], todo)
            computed = np.asarray(computed, dtype=np.float32)
            if computed.shape != (len(todo), d) or len(errs) != len(todo):
                raise RuntimeError(
                    f"encoder {self.name} returned shape {computed.shape}, "
                    f"expected {(len(todo), d)}"
                )
            fresh = {k: (row, err) for k, row, err in zip(todo, computed, errs, strict=True)}
            known.update(fresh)
            if cache is not None:
                cache.update(fresh)
        for i, key in enumerate(keys):
            if key is None or errors[i] is not None:
                continue
            row, err = known[key]
            if err is None and d > 0 and not np.isfinite(row).any():
                err = f"{self.name}: could not be computed"
            if err is not None:
                errors[i] = err
                continue
            values[i] = row
        valid = np.array([e is None for e in errors], dtype=bool)
        values[~valid] = np.nan
        return EncodedBlock(self.name, values, valid, errors)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array([f"{self.name}_{i}" for i in range(self.dim)], dtype=object)

    def __sklearn_tags__(self):  # noqa: D105 - scikit-learn protocol
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags


class MoleculeEncoder(BaseEncoder):
    """Encoder of molecules given as SMILES strings, RDKit molecules or parsed batches.

    Subclasses implement :meth:`_compute` on RDKit molecules. Raw SMILES given straight to
    an encoder are parsed and canonicalised but not normalised, as other fingerprint
    libraries do; pipelines pass molecules that they standardised themselves, with the
    setting saved in their config.
    """

    modality: ClassVar[str] = "smiles"
    parse_options: ClassVar[dict[str, Any]] = {"standardize": DIRECT_STANDARDIZATION}

    def _compute(self, mols: list[Chem.Mol], smiles: list[str]) -> np.ndarray:
        """Compute the (len(mols), dim) matrix for valid, unique molecules."""
        raise NotImplementedError  # pragma: no cover - abstract

    def _compute_unique(
        self, objects: list[Any], keys: list[str]
    ) -> tuple[np.ndarray, list[str | None]]:
        return self._compute(objects, keys), [None] * len(objects)
