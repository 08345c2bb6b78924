"""Missing-modality imputation: predict a missing block's latent from the blocks a row has.

Late fusion leaves a missing block NaN (boosted trees route it, other models fill the
column mean), which throws away what the other modalities say about it: a structure
fingerprint is largely determined by the composition of a perovskite, a graph latent by
the SMILES latent. A *cross-modal translator* learns that map on the training rows that
have both blocks; :class:`ImputingFusion` fills each missing block from the best translator
whose source the row has, before the downstream model sees the fused matrix.

Translators work on the *scaled* latents of :class:`~matfuse.fusion.late.LateFusion`
(standardised, block-weighted), so a fill is in the same units as a computed block. Two
candidates, picked per (source, target) pair by error on a held-out fraction: ridge
regression (RidgeCV; linear relations, small data) and a one-hidden-layer MLP
(scikit-learn's MLPRegressor; non-linear ones). The winner is refitted on every pair row.

>>> fusion = ImputingFusion(["composition", "structure-descriptors"])  # doctest: +SKIP
>>> X = fusion.fit_blocks(train_blocks).transform_blocks(test_blocks)  # doctest: +SKIP
>>> fusion.imputed_mask(test_blocks)  # which (row, block) were filled  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import RidgeCV
from sklearn.neural_network import MLPRegressor

from matfuse.chem.standardize import Standardization
from matfuse.encoders.base import valid_rows
from matfuse.fusion.late import Blocks, LateFusion, compute_blocks

logger = logging.getLogger(__name__)

__all__ = ["TRANSLATOR_KINDS", "ImputingFusion", "Translator", "fit_translator"]

TRANSLATOR_KINDS: tuple[str, ...] = ("ridge", "mlp")


@dataclass
class Translator:
    """A fitted map from one block's scaled latent to another's, as plain arrays.

    ``layers`` are (weight, bias) pairs; hidden layers use ReLU (MLPRegressor's default),
    the last is linear; ridge is one linear layer. Plain arrays make saving a safetensors
    file and reloading it exact, with no estimator object to rebuild.
    """

    kind: str
    layers: list[tuple[NDArray[np.float64], NDArray[np.float64]]]
    validation_mse: dict[str, float] = field(default_factory=dict)
    validation_r2: float = float("nan")

    def predict(self, X: NDArray[np.float64]) -> NDArray[np.float64]:
        h = np.nan_to_num(np.asarray(X, dtype=np.float64))
        for i, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return h


def _candidate(kind: str, random_state: int) -> Any:
    if kind == "ridge":
        return RidgeCV(alphas=np.logspace(-3, 3, 13))
    if kind == "mlp":
        # one hidden layer with early stopping: enough for the smooth maps between latents
        return MLPRegressor(
            hidden_layer_sizes=(128,),
            alpha=1e-3,
            learning_rate_init=1e-3,
            max_iter=300,
            early_stopping=True,
            n_iter_no_change=15,
            random_state=random_state,
        )
    raise ValueError(f"translator kind must be one of {TRANSLATOR_KINDS}, got {kind!r}")


def _layers(model: Any) -> list[tuple[NDArray[np.float64], NDArray[np.float64]]]:
    if isinstance(model, RidgeCV):
        coef = np.atleast_2d(model.coef_)
        return [(coef.T.astype(np.float64), np.atleast_1d(model.intercept_).astype(np.float64))]
    return [
        (np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64))
        for w, b in zip(model.coefs_, model.intercepts_, strict=True)
    ]


def _r2(y: NDArray[np.float64], pred: NDArray[np.float64]) -> float:
    """Variance-weighted R² over all target columns (constant columns count for nothing)."""
    total = float(((y - y.mean(axis=0)) ** 2).sum())
    return 1.0 - float(((y - pred) ** 2).sum()) / total if total > 0 else float("nan")


def fit_translator(
    source: NDArray[np.float64],
    target: NDArray[np.float64],
    kinds: Sequence[str] = TRANSLATOR_KINDS,
    validation_fraction: float = 0.2,
    random_state: int = 0,
) -> Translator:
    """Fit each candidate on part of the rows, keep the lowest validation MSE, refit on all.

    Rows are the ones that have both blocks; NaN inside a block is read as 0 (its mean).
    """
    X = np.nan_to_num(np.asarray(source, dtype=np.float64))
    Y = np.nan_to_num(np.asarray(target, dtype=np.float64))
    if len(X) < 5:
        raise ValueError(f"a translator needs at least 5 rows with both blocks, got {len(X)}")
    order = np.random.default_rng(random_state).permutation(len(X))
    n_val = max(1, int(round(validation_fraction * len(X))))
    val, train = order[:n_val], order[n_val:]
    errors: dict[str, float] = {}
    r2: dict[str, float] = {}
    with warnings.catch_warnings():
        # an MLP stopped at max_iter is still a candidate: the validation error judges it
        warnings.simplefilter("ignore", ConvergenceWarning)
        for kind in kinds:
            model = _candidate(kind, random_state).fit(X[train], Y[train])
            pred = model.predict(X[val]).reshape(len(val), -1)
            errors[kind] = float(np.mean((pred - Y[val]) ** 2))
            r2[kind] = _r2(Y[val], pred)
        best = min(errors, key=lambda k: errors[k])
        final = _candidate(best, random_state).fit(X, Y)
    logger.debug("translator: %s (validation mse %s)", best, errors)
    return Translator(best, _layers(final), validation_mse=errors, validation_r2=r2[best])


def _input_kind(encoder: str) -> str | None:
    """The input kind a registered encoder reads (``None`` for a name the registry lacks)."""
    from matfuse.encoders.registry import get_encoder
    from matfuse.inputs import encoder_kind

    try:
        return encoder_kind(get_encoder(encoder).modality)
    except (KeyError, ValueError, LookupError):
        return None


class ImputingFusion(TransformerMixin, BaseEstimator):
    """Late fusion whose missing blocks are filled by cross-modal translators.

    Parameters
    ----------
    encoders, scale, block_weighting, reduce, standardize : as
        :class:`~matfuse.fusion.late.LateFusion`, which does the scaling.
    impute : the blocks that may be filled (``None``: every block). A row keeps NaN in a
        block when it has none of that block's translator sources.
    translators : candidate kinds, ``"ridge"`` and/or ``"mlp"``.
    validation_fraction : held-out share of the pair rows for choosing a candidate.
    min_pairs : a (source, target) pair with fewer rows having both blocks gets no
        translator.
    within_kind : also fit translators between blocks computed from the same input kind
        (two structure encoders, two SMILES fingerprints). Off by default: a row that lacks
        one such block almost always lacks the others (the structure was missing or did not
        parse), so those translators are fitted at a cost and almost never used.
    random_state : seed of the split and the MLP.

    Attributes
    ----------
    fusion_ : the fitted :class:`LateFusion`.
    translators_ : ``{(target, source): Translator}``.
    """

    def __init__(
        self,
        encoders: Sequence[str] = ("composition", "structure-descriptors"),
        impute: Sequence[str] | None = None,
        translators: Sequence[str] = TRANSLATOR_KINDS,
        validation_fraction: float = 0.2,
        min_pairs: int = 20,
        within_kind: bool = False,
        scale: Literal["standard", "none"] = "standard",
        block_weighting: Literal["equal", "none"] = "equal",
        reduce: int | dict[str, int] | None = None,
        standardize: Standardization = "cleanup",
        random_state: int = 0,
    ) -> None:
        self.encoders = encoders
        self.impute = impute
        self.translators = translators
        self.validation_fraction = validation_fraction
        self.min_pairs = min_pairs
        self.within_kind = within_kind
        self.scale = scale
        self.block_weighting = block_weighting
        self.reduce = reduce
        self.standardize = standardize
        self.random_state = random_state

    def _late(self) -> LateFusion:
        return LateFusion(
            encoders=list(self.encoders),
            scale=self.scale,
            block_weighting=self.block_weighting,
            reduce=self.reduce,
            standardize=self.standardize,
        )

    def _blocks(self, X: Any) -> dict[str, np.ndarray]:
        computed = compute_blocks(list(self.encoders), X, self.standardize)
        return {k: b.values for k, b in computed.items()}

    def fit(self, X: Any, y: Any = None) -> ImputingFusion:
        return self.fit_blocks(self._blocks(X))

    def transform(self, X: Any) -> np.ndarray:
        return self.transform_blocks(self._blocks(X))

    def fit_blocks(self, blocks: Blocks) -> ImputingFusion:
        """Fit the scaling, then one translator per (target, source) pair with enough rows."""
        self.fusion_ = self._late().fit_blocks(blocks)
        Z = self.fusion_.transform_blocks(blocks).astype(np.float64)
        present = self.fusion_.block_validity(blocks)
        slices = self.fusion_.block_slices_
        targets = list(self.encoders) if self.impute is None else list(self.impute)
        unknown = [t for t in targets if t not in slices]
        if unknown:
            raise ValueError(f"impute names blocks {unknown} that are not among the encoders")
        self.translators_: dict[tuple[str, str], Translator] = {}
        kinds = {name: _input_kind(name) for name in self.encoders}
        for target in targets:
            for source in self.encoders:
                if source == target:
                    continue
                if not self.within_kind and kinds[source] and kinds[source] == kinds[target]:
                    logger.debug("no %s -> %s translator: same input kind", source, target)
                    continue
                rows = present[target] & present[source]
                if rows.sum() < self.min_pairs:
                    logger.info(
                        "no %s -> %s translator: %d rows have both", source, target, rows.sum()
                    )
                    continue
                (ts, te), (ss, se) = slices[target], slices[source]
                self.translators_[(target, source)] = fit_translator(
                    Z[rows, ss:se],
                    Z[rows, ts:te],
                    kinds=self.translators,
                    validation_fraction=self.validation_fraction,
                    random_state=self.random_state,
                )
        return self

    def _sources(self, target: str) -> list[tuple[str, Translator]]:
        """Translators into ``target``, best validation R² first (tried in that order)."""
        found = [(s, tr) for (t, s), tr in self.translators_.items() if t == target]
        return sorted(found, key=lambda item: -np.nan_to_num(item[1].validation_r2, nan=-np.inf))

    def transform_blocks(self, blocks: Blocks) -> np.ndarray:
        """The late-fused float32 matrix with missing blocks filled where a source exists."""
        Z = self.fusion_.transform_blocks(blocks)
        slices = self.fusion_.block_slices_
        for target, source, translator, rows in self._fills(blocks):
            (ts, te), (ss, se) = slices[target], slices[source]
            Z[rows, ts:te] = translator.predict(Z[rows, ss:se].astype(np.float64))
        return Z

    def imputed_mask(self, blocks: Blocks) -> dict[str, NDArray[np.bool_]]:
        """Per block, the rows whose values :meth:`transform_blocks` imputes.

        Read from which blocks each row has; nothing is scaled or translated.
        """
        filled = {k: np.zeros(len(np.asarray(blocks[k])), bool) for k in self.encoders}
        for target, _, _, rows in self._fills(blocks):
            filled[target] |= rows
        return filled

    def _fills(self, blocks: Blocks) -> list[tuple[str, str, Translator, NDArray[np.bool_]]]:
        """(target, source, translator, rows) per fill: each missing block of a row comes
        from the best translator (by validation R²) whose source the row has."""
        present = {k: valid_rows(np.asarray(blocks[k])) for k in self.encoders}
        plan = []
        for target in self.encoders:
            todo = ~present[target]
            for source, translator in self._sources(target):
                rows = todo & present[source]
                if rows.any():
                    plan.append((target, source, translator, rows))
                    todo &= ~rows
        return plan

    def block_validity(self, blocks: Blocks) -> dict[str, np.ndarray]:
        return self.fusion_.block_validity(blocks)

    @property
    def block_slices_(self) -> dict[str, tuple[int, int]]:
        return self.fusion_.block_slices_

    # -- persistence helpers -------------------------------------------------------------
    def state_tensors(self) -> dict[str, np.ndarray]:
        """Scaling and translator arrays as flat names, for safetensors.

        Scaling keys are :meth:`LateFusion.state_tensors`'s under ``fusion/``; translator
        layers ``translator/<target>/<source>/<i>/{weight,bias}``. The kind and validation
        errors are in :meth:`state_config` (JSON).
        """
        out = {f"fusion/{k}": v for k, v in self.fusion_.state_tensors().items()}
        for (target, source), tr in self.translators_.items():
            for i, (w, b) in enumerate(tr.layers):
                out[f"translator/{target}/{source}/{i}/weight"] = np.ascontiguousarray(w)
                out[f"translator/{target}/{source}/{i}/bias"] = np.ascontiguousarray(b)
        return out

    def state_config(self) -> list[dict[str, Any]]:
        """JSON-able description of each translator (pair, kind, validation errors)."""
        return [
            {
                "target": t,
                "source": s,
                "kind": tr.kind,
                "n_layers": len(tr.layers),
                "validation_mse": tr.validation_mse,
                "validation_r2": tr.validation_r2,
            }
            for (t, s), tr in self.translators_.items()
        ]

    def load_state(
        self, config: Sequence[Mapping[str, Any]], tensors: Mapping[str, np.ndarray]
    ) -> ImputingFusion:
        """Restore what :meth:`state_config` and :meth:`state_tensors` wrote."""
        prefix = "fusion/"
        self.fusion_ = self._late().load_state_tensors(
            {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        )
        self.translators_ = {}
        for entry in config:
            t, s = str(entry["target"]), str(entry["source"])
            base = f"translator/{t}/{s}"
            layers = [
                (
                    np.asarray(tensors[f"{base}/{i}/weight"], dtype=np.float64),
                    np.asarray(tensors[f"{base}/{i}/bias"], dtype=np.float64),
                )
                for i in range(int(entry["n_layers"]))
            ]
            self.translators_[(t, s)] = Translator(
                str(entry["kind"]),
                layers,
                validation_mse={k: float(v) for k, v in entry["validation_mse"].items()},
                validation_r2=float(entry["validation_r2"]),
            )
        return self
