"""One-call convenience functions, in the spirit of fm4m-kit.

>>> import matfuse
>>> X = matfuse.get_representation("ecfp", ["CCO", "c1ccccc1"])
>>> X.shape
(2, 2048)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from matfuse.chem.standardize import parse_smiles
from matfuse.encoders.base import BaseEncoder
from matfuse.encoders.registry import get_encoder

if TYPE_CHECKING:
    from matfuse.benchmark import SplitData


def load_encoder(name: str, **params: Any) -> BaseEncoder:
    """The registered encoder object (a scikit-learn transformer with ``.transform``)."""
    return get_encoder(name, **params)


def get_representation(name: str, smiles: Sequence[Any], **params: Any) -> np.ndarray:
    """Encode molecules with one encoder: an (n, dim) array, NaN rows for invalid input."""
    return get_encoder(name, **params).transform(list(smiles))


def _split_data(
    train_smiles: Sequence[Any],
    train_y: Any,
    test_smiles: Sequence[Any],
    test_y: Any,
) -> SplitData:
    from matfuse.benchmark import SplitData

    Y = np.concatenate([_as_2d(train_y), _as_2d(test_y)])
    n_train = len(train_smiles)
    return SplitData(
        parsed=parse_smiles([*train_smiles, *test_smiles]),
        Y=Y,
        target_names=[f"y{i}" for i in range(Y.shape[1])],
        train=np.arange(n_train),
        valid=np.arange(0),
        test=np.arange(n_train, len(Y)),
        split_name="given",
    )


def _as_2d(y: Any) -> np.ndarray:
    arr = np.asarray(y, dtype=float)
    return arr[:, None] if arr.ndim == 1 else arr


def _evaluate(
    names: Sequence[str],
    fused: bool,
    train_smiles: Sequence[Any],
    train_y: Any,
    test_smiles: Sequence[Any],
    test_y: Any,
    model: str,
) -> dict[str, Any]:
    from matfuse.benchmark import compare_representations

    data = _split_data(train_smiles, train_y, test_smiles, test_y)
    key = "fused" if fused else names[0]
    res = compare_representations(
        data,
        list(names),
        model=model,
        fused_sets={key: list(names)} if fused else {},
        progress=False,
        include_single=not fused,
    )
    return res["representations"][key]["metrics"]


def evaluate_single(
    name: str,
    train_smiles: Sequence[Any],
    train_y: Any,
    test_smiles: Sequence[Any],
    test_y: Any,
    model: str = "auto",
) -> dict[str, Any]:
    """Fit ``model`` on one encoder's representation and return test metrics."""
    return _evaluate([name], False, train_smiles, train_y, test_smiles, test_y, model)


def evaluate_fused(
    names: Sequence[str],
    train_smiles: Sequence[Any],
    train_y: Any,
    test_smiles: Sequence[Any],
    test_y: Any,
    model: str = "auto",
) -> dict[str, Any]:
    """Fit ``model`` on the late fusion of several encoders and return test metrics."""
    return _evaluate(list(names), True, train_smiles, train_y, test_smiles, test_y, model)
