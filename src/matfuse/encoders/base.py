"""The encoder contract shared by every modality.

An encoder is a scikit-learn transformer that turns a batch of inputs into a fixed-size
float matrix. Rows whose input is invalid come back as all-NaN rows, never dropped, so
that fusion and models can tell which block is missing for which row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from rdkit import Chem
from sklearn.base import BaseEstimator, TransformerMixin

from matfuse.chem.standardize import ParsedMolecules, parse_smiles

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
    """Base class of all encoders.

    Subclasses set the class attributes ``name``, ``modality`` and ``pretrained`` and
    implement :meth:`dim` and the batch computation. ``fit`` is a no-op for every encoder
    that has no data-dependent state, which is all of the fixed featurisers and the
    pretrained networks: they must behave the same on a train and a test set.
    """

    name: ClassVar[str] = "base"
    modality: ClassVar[str] = "smiles"
    pretrained: ClassVar[bool] = False
    description: ClassVar[str] = ""

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

    def encode_block(self, X: Any) -> EncodedBlock:  # pragma: no cover - abstract
        """Values plus the validity mask and a reason for every invalid row."""
        raise NotImplementedError

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array([f"{self.name}_{i}" for i in range(self.dim)], dtype=object)

    def __sklearn_tags__(self):  # noqa: D105 - scikit-learn protocol
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags


class MoleculeEncoder(BaseEncoder):
    """Encoder of molecules given as SMILES strings, RDKit molecules or parsed records.

    Parsing, canonicalisation and de-duplication happen here once: each unique canonical
    molecule of a batch is computed once, and with ``cache=True`` results are kept across
    calls (worth it for slow encoders such as Mordred or neural networks).
    """

    modality: ClassVar[str] = "smiles"
    #: Slow encoders cache results by canonical SMILES across calls by default.
    cache_by_default: ClassVar[bool] = False

    def _compute(self, mols: list[Chem.Mol], smiles: list[str]) -> np.ndarray:
        """Compute the (len(mols), dim) matrix for valid, unique molecules."""
        raise NotImplementedError  # pragma: no cover - abstract

    def _cache(self) -> dict[str, np.ndarray] | None:
        if not getattr(self, "cache", self.cache_by_default):
            return None
        if not hasattr(self, "_feature_cache"):
            self._feature_cache: dict[str, np.ndarray] = {}
        return self._feature_cache

    def encode_block(self, X: Sequence[Any] | ParsedMolecules) -> EncodedBlock:
        if isinstance(X, ParsedMolecules):
            parsed = X
        else:
            # Raw SMILES given straight to an encoder are parsed and canonicalised but not
            # normalised, as other fingerprint libraries do; pipelines pass molecules that
            # they standardised themselves, with the setting saved in their config.
            parsed = parse_smiles(_as_list(X), standardize=DIRECT_STANDARDIZATION)
        n, d = len(parsed), self.dim
        values = np.full((n, d), np.nan, dtype=np.float32)
        errors = list(parsed.errors)
        # de-duplicate by canonical SMILES: each molecule is computed once per batch
        first: dict[str, int] = {}
        for i, smi in enumerate(parsed.canonical):
            if smi is not None and smi not in first:
                first[smi] = i
        cache = self._cache()
        todo = [s for s in first if cache is None or s not in cache]
        if todo:
            mols = [parsed.mols[first[s]] for s in todo]
            computed = np.asarray(self._compute(mols, todo), dtype=np.float32)
            if computed.shape != (len(todo), d):
                raise RuntimeError(
                    f"encoder {self.name} returned shape {computed.shape}, "
                    f"expected {(len(todo), d)}"
                )
            fresh = dict(zip(todo, computed, strict=True))
            if cache is not None:
                cache.update(fresh)
        else:
            fresh = {}
        for i, smi in enumerate(parsed.canonical):
            if smi is None:
                continue
            row = fresh[smi] if smi in fresh else cache[smi]  # type: ignore[index]
            if np.isnan(row).all() and d > 0:
                errors[i] = errors[i] or f"{self.name}: could not be computed"
                continue
            values[i] = row
        valid = np.array([e is None for e in errors], dtype=bool)
        values[~valid] = np.nan
        return EncodedBlock(self.name, values, valid, errors)


def _as_list(X: Any) -> list[Any]:
    if isinstance(X, str):
        # a lone string is a single molecule, not a sequence of characters
        return [X]
    if isinstance(X, np.ndarray) and X.ndim == 2:
        return list(X[:, 0])
    if hasattr(X, "tolist"):
        return list(X.tolist())
    return list(X)
