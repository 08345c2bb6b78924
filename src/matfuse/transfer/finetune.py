"""The ``transfer-mlp`` model: a source net fine-tuned on a small target.

The source's body (and its input standardisation) is kept, the head is reinitialised, and
the whole net is trained on the target with the body at a low learning rate (``body_lr``,
10x below the head's by default) so the transferred representation moves only as far as
the target's data justify; early stopping on an inner validation split picks the epoch.
``source="auto"`` fine-tunes every source of the library and keeps the one with the lowest
cross-validated MAE on the target (the fine-tuning half of shotgun transfer).

Sources built from the target's own table are excluded before anything is fitted (see
:func:`matfuse.transfer.library.check_leakage`); naming such a source is refused.

An end-to-end model of compositions in the registry: :class:`~matfuse.pipeline.PropertyModel`
hands it the parsed compositions, its :meth:`featurize` computes the features the source
reads, and :meth:`state` / :meth:`load_state` persist it as JSON + safetensors (the library
is not needed to load a fitted model).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.model_selection import KFold
from sklearn.utils.validation import check_is_fitted

from matfuse.models.threads import torch_threads
from matfuse.transfer.features import CompositionRow, featurize_rows
from matfuse.transfer.library import Source, SourceLibrary, check_leakage, load_library
from matfuse.transfer.network import SourceMLP, train_regression

logger = logging.getLogger(__name__)

__all__ = ["TransferMLPRegressor", "finetune_source"]


def finetune_source(
    source: Source,
    X: NDArray[Any],
    y: NDArray[np.float64],
    *,
    head_lr: float = 1e-3,
    body_lr: float = 1e-4,
    max_epochs: int = 300,
    patience: int = 30,
    validation_fraction: float = 0.2,
    batch_size: int = 32,
    weight_decay: float = 1e-4,
    random_state: int = 0,
) -> SourceMLP:
    """A copy of ``source``'s net fine-tuned on raw features ``X`` and labels ``y``.

    Input standardisation stays the source's (the body was trained on it); the target gets
    its own transform and scaling, and the head is reinitialised.
    """
    base = source.model
    mlp = SourceMLP(**{**base.get_params(), "random_state": random_state})
    mlp.n_features_in_ = base.n_features_in_
    mlp.input_mean_, mlp.input_scale_ = base.input_mean_, base.input_scale_
    with np.errstate(all="ignore"):
        target = mlp._fit_target_scaling(y)
    torch.manual_seed(random_state)
    net = copy.deepcopy(base.net_)
    net.head.reset_parameters()
    groups = [(net.body.parameters(), body_lr), (net.head.parameters(), head_lr)]
    mlp.net_, mlp.best_epoch_, mlp.val_loss_ = train_regression(
        net,
        groups,
        mlp._inputs(X),
        torch.from_numpy(target),
        max_epochs=max_epochs,
        patience=patience,
        validation_fraction=validation_fraction,
        batch_size=batch_size,
        weight_decay=weight_decay,
        seed=random_state,
    )
    mlp.n_train_ = len(y)
    return mlp


def _rows(X: Any) -> list[CompositionRow | None]:
    if isinstance(X, list | np.ndarray) and all(
        isinstance(r, CompositionRow) or r is None for r in X
    ):
        return list(X)
    if isinstance(X, np.ndarray) and X.dtype.kind in "biuf":
        raise ValueError(
            "transfer-mlp learns from compositions, not from a feature matrix; give it "
            "formulas (PropertyModel(model='transfer-mlp', input_type='composition'))"
        )
    if isinstance(X, str):
        X = [X]
    return featurize_rows(X)


class TransferMLPRegressor(RegressorMixin, BaseEstimator):
    """Fine-tune a source MLP of a transfer library on a (small) regression target.

    Parameters
    ----------
    source : a source name, or ``"auto"``: the source with the lowest ``cv``-fold MAE.
    library : library directory; ``None`` is the shipped ``transfer-compositions``.
    exclude : sources never used (``+``-joined), besides those built from the target's data.
    head_lr, body_lr : learning rates of the new head and the transferred body.
    max_epochs, patience, validation_fraction : early stopping on an inner split.
    batch_size, weight_decay : AdamW schedule.
    cv : folds for ``source="auto"``.
    random_state, n_threads : seed and torch threads.
    leakage_check : exclude sources built from the target's own data (on by default).
        :func:`~matfuse.transfer.shotgun.shotgun` turns it off for the models it builds: it
        decides leakage once on the whole target, and a check repeated on each CV fold's
        subset can reach another verdict (two strongly correlated properties of the same
        materials, e.g. AFLOW's bulk and shear moduli, pass on 100 rows and fail on 66).
    """

    def __init__(
        self,
        source: str = "auto",
        library: str | None = None,
        exclude: str = "",
        head_lr: float = 1e-3,
        body_lr: float = 1e-4,
        max_epochs: int = 300,
        patience: int = 30,
        validation_fraction: float = 0.2,
        batch_size: int = 32,
        weight_decay: float = 1e-4,
        cv: int = 5,
        random_state: int = 0,
        n_threads: int = 1,
        leakage_check: bool = True,
    ) -> None:
        self.source = source
        self.library = library
        self.exclude = exclude
        self.head_lr = head_lr
        self.body_lr = body_lr
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.cv = cv
        self.random_state = random_state
        self.n_threads = n_threads
        self.leakage_check = leakage_check

    def featurize(self, X: Any) -> list[CompositionRow | None]:
        """Keys and raw features of each row (``None`` where invalid), what fit/predict read."""
        return _rows(X)

    def _finetune(self, source: Source, X: NDArray[Any], y: NDArray[np.float64]) -> SourceMLP:
        return finetune_source(
            source,
            X,
            y,
            head_lr=self.head_lr,
            body_lr=self.body_lr,
            max_epochs=self.max_epochs,
            patience=self.patience,
            validation_fraction=self.validation_fraction,
            batch_size=self.batch_size,
            weight_decay=self.weight_decay,
            random_state=self.random_state,
        )

    def candidates(
        self, lib: SourceLibrary, keys: Sequence[str], y: NDArray[np.float64]
    ) -> list[str]:
        """Sources this fit may use: requested, minus ``exclude`` and leaked ones.

        Sets ``excluded_`` (name -> reason) for the leaked sources.
        """
        leaks = check_leakage(lib, keys, y) if self.leakage_check else []
        self.excluded_ = {c.source: c.reason for c in leaks if c.leaked}
        for reason in self.excluded_.values():
            logger.info("excluded: %s", reason)
        requested = lib.select("all" if self.source == "auto" else self.source, self.exclude)
        usable = [n for n in requested if n not in self.excluded_]
        if not usable:
            why = "; ".join(self.excluded_.values()) or "none requested"
            raise ValueError(f"no usable transfer source for this target ({why})")
        return usable

    def fit(self, X: Any, y: Any) -> TransferMLPRegressor:
        """Fine-tune (choosing the source by CV when ``source="auto"``); invalid rows and
        rows without a label are skipped."""
        rows = self.featurize(X)
        y_arr = np.asarray(y, dtype=np.float64).reshape(-1)
        if len(rows) != len(y_arr):
            raise ValueError(f"{len(rows)} inputs for {len(y_arr)} labels")
        keep = [i for i, r in enumerate(rows) if r is not None and np.isfinite(y_arr[i])]
        if len(keep) < 5:
            raise ValueError("transfer-mlp needs at least 5 rows with a composition and a label")
        keys = [rows[i].key for i in keep]  # type: ignore[union-attr]
        feats = np.vstack([rows[i].features for i in keep])  # type: ignore[union-attr]
        target = y_arr[keep]
        lib = load_library(self.library)
        names = self.candidates(lib, keys, target)
        with torch_threads(self.n_threads):
            if len(names) == 1:
                self.cv_scores_: dict[str, float] = {}
                self.source_ = names[0]
            else:
                self.cv_scores_ = {n: self._cv_mae(lib.sources[n], feats, target) for n in names}
                self.source_ = min(self.cv_scores_, key=lambda n: self.cv_scores_[n])
            self.mlp_ = self._finetune(lib.sources[self.source_], feats, target)
        self.n_train_ = len(keep)
        logger.info("transfer-mlp: fine-tuned %s on %d rows", self.source_, self.n_train_)
        return self

    def _cv_mae(self, source: Source, X: NDArray[Any], y: NDArray[np.float64]) -> float:
        folds = KFold(min(self.cv, len(y)), shuffle=True, random_state=self.random_state)
        errors = np.empty(len(y))
        for train, test in folds.split(X):
            errors[test] = np.abs(
                self._finetune(source, X[train], y[train]).predict(X[test]) - y[test]
            )
        return float(errors.mean())

    def predict(self, X: Any) -> NDArray[np.float64]:
        """Predictions; NaN for rows that could not be featurised."""
        check_is_fitted(self, "mlp_")
        rows = self.featurize(X)
        out = np.full(len(rows), np.nan)
        ok = [i for i, r in enumerate(rows) if r is not None]
        if ok:
            feats = np.vstack([rows[i].features for i in ok])  # type: ignore[union-attr]
            with torch_threads(self.n_threads):
                out[ok] = self.mlp_.predict(feats)
        return out

    # -- persistence ------------------------------------------------------------------
    def state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        """JSON state (chosen source, CV scores, exclusions, net config) and weights."""
        check_is_fitted(self, "mlp_")
        config, arrays = self.mlp_.state()
        params = {
            k: list(v) if isinstance(v, tuple) else v for k, v in self.mlp_.get_params().items()
        }
        state = {
            "source": self.source_,
            "cv_scores": self.cv_scores_,
            "excluded": self.excluded_,
            "n_train": self.n_train_,
            "mlp_params": params,
            "mlp": config,
        }
        return state, arrays

    def load_state(
        self, config: Mapping[str, Any], arrays: Mapping[str, NDArray[Any]]
    ) -> TransferMLPRegressor:
        """Restore :meth:`state` output (no library needed)."""
        params = dict(config["mlp_params"])
        params["hidden"] = tuple(params.get("hidden", ()))
        self.mlp_ = SourceMLP(**params).load_state(config["mlp"], arrays)
        self.source_ = str(config["source"])
        self.cv_scores_ = {str(k): float(v) for k, v in dict(config.get("cv_scores", {})).items()}
        self.excluded_ = {str(k): str(v) for k, v in dict(config.get("excluded", {})).items()}
        self.n_train_ = int(config.get("n_train", 0))
        return self
