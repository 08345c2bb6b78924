"""Late fusion: concatenate encoder blocks, each scaled (and optionally reduced) on its own.

Why per block: blocks differ wildly in size (167 MACCS keys vs 2,048 Morgan counts) and
scale (bit vectors vs molecular weights). Standardising each block and weighting it by
``1/sqrt(dim)`` gives every block the same total variance, so distance-based models (SVR,
GP, kernel ridge) do not let the largest block drown the others; tree models are
unaffected. A row that is invalid for one block keeps NaN there (boosted trees treat it as
missing; other models impute), and the other blocks still carry its information.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA

from matfuse.chem.standardize import Standardization
from matfuse.encoders.base import EncodedBlock, valid_rows
from matfuse.encoders.registry import get_encoder
from matfuse.inputs import as_batch
from matfuse.progress import stage

Blocks = Mapping[str, np.ndarray]


def compute_blocks(
    encoders: Sequence[str], X: Any, standardize: Standardization = "cleanup"
) -> dict[str, EncodedBlock]:
    """Encode ``X`` with each encoder spec once; inputs are parsed once for all blocks.

    ``X`` is raw inputs (SMILES unless they are material objects) or an already parsed
    batch of any kind (:mod:`matfuse.inputs`), which passes straight to the encoders; each
    encoder reads the part of a multimodal batch it can read.
    """
    parsed = as_batch(X, None, standardize=standardize)
    specs = list(encoders)
    out: dict[str, EncodedBlock] = {}
    for i, spec in enumerate(specs):
        stage("encode", spec, i, len(specs))
        out[spec] = get_encoder(spec).encode_block(parsed)
    return out


class LateFusion(TransformerMixin, BaseEstimator):
    """Concatenate encoder blocks with per-block scaling and optional reduction.

    Parameters
    ----------
    encoders : encoder spec strings (see :func:`matfuse.encoders.get_encoder`).
    scale : ``"standard"`` to standardise each column (NaN-aware), ``"none"`` to keep raw
        values (fine for tree models only).
    block_weighting : ``"equal"`` multiplies each block by ``1/sqrt(dim)`` after scaling.
    reduce : ``None``, an int (PCA components for every block wider than that) or a dict
        ``{encoder: n_components}``; PCA is fitted on the valid rows of the block.
    standardize : molecule standardisation applied before encoding.

    Use ``fit``/``transform`` on SMILES, or ``fit_blocks``/``transform_blocks`` on blocks
    computed once with :func:`compute_blocks` (how benchmarks avoid recomputing features).
    """

    def __init__(
        self,
        encoders: Sequence[str] = ("ecfp-count", "rdkit2d"),
        scale: Literal["standard", "none"] = "standard",
        block_weighting: Literal["equal", "none"] = "equal",
        reduce: int | dict[str, int] | None = None,
        standardize: Standardization = "cleanup",
    ) -> None:
        self.encoders = encoders
        self.scale = scale
        self.block_weighting = block_weighting
        self.reduce = reduce
        self.standardize = standardize

    # -- on SMILES ------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> LateFusion:
        return self.fit_blocks(self._blocks(X))

    def transform(self, X: Any) -> np.ndarray:
        return self.transform_blocks(self._blocks(X))

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        blocks = self._blocks(X)
        return self.fit_blocks(blocks).transform_blocks(blocks)

    def encode(self, X: Any) -> tuple[np.ndarray, dict[str, EncodedBlock]]:
        """Fused matrix plus the per-block results (validity and reasons per row)."""
        blocks = compute_blocks(list(self.encoders), X, self.standardize)
        return self.transform_blocks({k: b.values for k, b in blocks.items()}), blocks

    def _blocks(self, X: Any) -> dict[str, np.ndarray]:
        return {
            k: b.values for k, b in compute_blocks(list(self.encoders), X, self.standardize).items()
        }

    # -- on precomputed blocks -------------------------------------------------------------
    def _n_components(self, name: str, dim: int) -> int | None:
        if self.reduce is None:
            return None
        if isinstance(self.reduce, dict):
            k = self.reduce.get(name)
        else:
            k = int(self.reduce)
        return k if k is not None and k < dim else None

    def fit_blocks(self, blocks: Blocks) -> LateFusion:
        """Learn per-block scaling and reduction from precomputed blocks."""
        self._check_blocks(blocks)
        self.block_state_: dict[str, dict[str, np.ndarray]] = {}
        self.block_slices_: dict[str, tuple[int, int]] = {}
        start = 0
        for name in self.encoders:
            values = np.asarray(blocks[name], dtype=np.float64)
            state: dict[str, np.ndarray] = {}
            rows = valid_rows(values)
            if self.scale == "standard":
                with np.errstate(all="ignore"):
                    mean = (
                        np.nanmean(values[rows], axis=0)
                        if rows.any()
                        else np.zeros(values.shape[1])
                    )
                    std = (
                        np.nanstd(values[rows], axis=0) if rows.any() else np.ones(values.shape[1])
                    )
                mean = np.nan_to_num(mean)
                std = np.where(np.isfinite(std) & (std > 1e-12), std, 1.0)
                state["mean"], state["std"] = mean, std
            scaled = self._scale(values, state)
            k = self._n_components(name, values.shape[1])
            if k is not None and rows.sum() > k:
                filled = np.nan_to_num(scaled[rows])
                pca = PCA(n_components=k, random_state=0).fit(filled)
                state["pca_components"] = pca.components_
                state["pca_mean"] = pca.mean_
            width = (
                state["pca_components"].shape[0] if "pca_components" in state else values.shape[1]
            )
            state["weight"] = np.array(
                [1.0 / np.sqrt(width) if self.block_weighting == "equal" else 1.0]
            )
            self.block_state_[name] = state
            self.block_slices_[name] = (start, start + width)
            start += width
        self.n_features_out_ = start
        return self

    def transform_blocks(self, blocks: Blocks) -> np.ndarray:
        """Fuse precomputed blocks into one float32 matrix (NaN where a block is invalid)."""
        self._check_blocks(blocks)
        parts = []
        for name in self.encoders:
            state = self.block_state_[name]
            values = np.asarray(blocks[name], dtype=np.float64)
            rows = valid_rows(values)
            out = self._scale(values, state)
            if "pca_components" in state:
                reduced = np.full((len(values), state["pca_components"].shape[0]), np.nan)
                reduced[rows] = (np.nan_to_num(out[rows]) - state["pca_mean"]) @ state[
                    "pca_components"
                ].T
                out = reduced
            parts.append(out * state["weight"][0])
        return np.hstack(parts).astype(np.float32)

    def block_validity(self, blocks: Blocks) -> dict[str, np.ndarray]:
        """Which rows carry data in which block (for reports and the missing-modality logic)."""
        return {name: valid_rows(np.asarray(blocks[name])) for name in self.encoders}

    def _scale(self, values: np.ndarray, state: dict[str, np.ndarray]) -> np.ndarray:
        if "mean" not in state:
            return values.copy()
        return (values - state["mean"]) / state["std"]

    def _check_blocks(self, blocks: Blocks) -> None:
        missing = [name for name in self.encoders if name not in blocks]
        if missing:
            raise KeyError(f"blocks missing for encoders {missing}")

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names: list[str] = []
        for name in self.encoders:
            lo, hi = self.block_slices_[name]
            names += [f"{name}__{i}" for i in range(hi - lo)]
        return np.array(names, dtype=object)

    # -- persistence helpers -------------------------------------------------------------
    def state_tensors(self) -> dict[str, np.ndarray]:
        """Learned arrays, flattened to ``"{block}/{key}"`` for safetensors."""
        # safetensors writes raw buffers: arrays must be C-contiguous (PCA components are not)
        return {
            f"{b}/{k}": np.ascontiguousarray(v)
            for b, st in self.block_state_.items()
            for k, v in st.items()
        }

    def load_state_tensors(self, tensors: Mapping[str, np.ndarray]) -> LateFusion:
        """Restore learned arrays written by :meth:`state_tensors`."""
        self.block_state_ = {name: {} for name in self.encoders}
        for key, value in tensors.items():
            block, _, field = key.rpartition("/")
            self.block_state_[block][field] = np.asarray(value, dtype=np.float64)
        self.block_slices_ = {}
        start = 0
        for name in self.encoders:
            st = self.block_state_[name]
            if "pca_components" in st:
                width = st["pca_components"].shape[0]
            else:
                width = get_encoder(name).dim
            self.block_slices_[name] = (start, start + width)
            start += width
        self.n_features_out_ = start
        return self
