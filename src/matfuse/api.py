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

from matfuse.encoders.base import BaseEncoder
from matfuse.encoders.registry import get_encoder

if TYPE_CHECKING:
    from matfuse.workflow import SplitData


def load_encoder(name: str, **params: Any) -> BaseEncoder:
    """The registered encoder object (a scikit-learn transformer with ``.transform``)."""
    return get_encoder(name, **params)


def get_representation(name: str, inputs: Sequence[Any], **params: Any) -> np.ndarray:
    """Encode inputs (SMILES, formulas, structures: what the encoder reads) with one encoder.

    Returns an (n, dim) array with NaN rows for invalid inputs.
    """
    return get_encoder(name, **params).transform(list(inputs))


def _split_data(
    train_smiles: Sequence[Any],
    train_y: Any,
    test_smiles: Sequence[Any],
    test_y: Any,
    input_type: str | None = None,
) -> SplitData:
    from matfuse.inputs import kind_of, parse_inputs
    from matfuse.workflow import SplitData

    Y = np.concatenate([_as_2d(train_y), _as_2d(test_y)])
    n_train = len(train_smiles)
    parsed = parse_inputs([*train_smiles, *test_smiles], input_type)
    return SplitData(
        parsed=parsed,
        input_type=kind_of(parsed),
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
    input_type: str | None = None,
) -> dict[str, Any]:
    from matfuse.workflow import compare_representations

    data = _split_data(train_smiles, train_y, test_smiles, test_y, input_type)
    key = "fused" if fused else names[0]
    res = compare_representations(
        data,
        list(names),
        model=model,
        fused_sets={key: list(names)} if fused else {},
        progress=False,
        include_single=not fused,
    )
    # the trivial baseline (training median / prior rate) on the same test rows, beside them
    return {**res.representations[key].metrics, "baseline": res.baseline["metrics"]}


def evaluate_single(
    name: str,
    train_smiles: Sequence[Any],
    train_y: Any,
    test_smiles: Sequence[Any],
    test_y: Any,
    model: str = "auto",
    input_type: str | None = None,
) -> dict[str, Any]:
    """Fit ``model`` on one encoder's representation and return test metrics.

    The result holds ``baseline``: the same metrics for the trivial baseline.
    """
    return _evaluate([name], False, train_smiles, train_y, test_smiles, test_y, model, input_type)


def evaluate_fused(
    names: Sequence[str],
    train_smiles: Sequence[Any],
    train_y: Any,
    test_smiles: Sequence[Any],
    test_y: Any,
    model: str = "auto",
    input_type: str | None = None,
) -> dict[str, Any]:
    """Fit ``model`` on the late fusion of several encoders and return test metrics.

    The result holds ``baseline``: the same metrics for the trivial baseline.
    """
    args = (train_smiles, train_y, test_smiles, test_y, model, input_type)
    return _evaluate(list(names), True, *args)


def crystal_search(elements: Sequence[str] | str, **options: Any) -> Any:
    """Explore a chemical system as ``matfuse crystal-search`` does; ``options`` are those of
    :func:`matfuse.crystals.explore.explore` (strategy, budget, seed, objective, out_dir...).

    >>> result = crystal_search("Li,Co,O", budget=30, strategy="substitution")  # doctest: +SKIP
    >>> result.counts()["stable_unique"]  # doctest: +SKIP
    """
    from matfuse.crystals.explore import explore

    return explore(elements, **options)
