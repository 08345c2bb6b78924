"""What the source nets read: composition features with the row keys used for leakage checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["CompositionRow", "composition_features", "featurize_rows"]


@dataclass(frozen=True)
class CompositionRow:
    """One parsed row: its key (pymatgen's reduced formula) and its raw feature vector."""

    key: str
    features: NDArray[np.float32]


def composition_features(
    inputs: Any, encoder: str = "composition"
) -> tuple[list[str | None], NDArray[np.float32], list[str | None]]:
    """Keys, raw features (NaN rows where invalid) and per-row errors of ``inputs``.

    ``inputs`` are formulas, compositions or an already parsed batch (structures give their
    composition).
    """
    from matfuse.encoders.registry import get_encoder
    from matfuse.inputs import as_batch, encoder_kind

    enc = get_encoder(encoder)
    batch = as_batch(inputs, encoder_kind(enc.modality))
    block = enc.encode_block(batch)
    keys = [k if ok else None for k, ok in zip(batch.keys, block.valid, strict=True)]
    return keys, block.values, list(block.errors)


def featurize_rows(inputs: Any, encoder: str = "composition") -> list[CompositionRow | None]:
    """One :class:`CompositionRow` per input, ``None`` where it could not be featurised."""
    keys, values, _ = composition_features(inputs, encoder)
    return [CompositionRow(k, values[i]) if k is not None else None for i, k in enumerate(keys)]
