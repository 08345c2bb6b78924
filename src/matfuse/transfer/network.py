"""The source network: an MLP on composition features whose penultimate layer is an encoder.

XenonPy.MDL (Yamada et al. 2019) trains many small fully connected nets on large property
tables and reuses them on small ones: the activations of the last hidden layer are a learned
descriptor (frozen transfer), or the whole net is the starting point of a fit on the small
target (fine-tuning). :class:`SourceMLP` is that net with the scikit-learn estimator API:
it standardises its inputs and (transformed) target itself, so that its weights, input
statistics and target scaling travel together and it can be applied to raw features.

>>> mlp = SourceMLP(hidden=(64, 32), max_epochs=50).fit(X, y)  # doctest: +SKIP
>>> mlp.embed(X_new).shape  # (n, 32)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from matfuse.models.early_stopping import EarlyStopping, validation_split
from matfuse.models.threads import torch_threads
from matfuse.models.transforms import TargetTransform, choose_target_transform

logger = logging.getLogger(__name__)

__all__ = ["SourceMLP", "SourceNet"]


class SourceNet(nn.Module):
    """``body`` (Linear -> SiLU -> Dropout per hidden layer) and a linear ``head``.

    The body's output, the last hidden layer, is the transferable representation.
    """

    def __init__(self, d_in: int, hidden: Sequence[int], dropout: float = 0.1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = int(d_in)
        for h in hidden:
            layers += [nn.Linear(width, int(h)), nn.SiLU(), nn.Dropout(dropout)]
            width = int(h)
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))[:, 0]


class SourceMLP(RegressorMixin, BaseEstimator):
    """A regression MLP on raw feature rows (NaN allowed: imputed with the training mean).

    Parameters
    ----------
    hidden : widths of the hidden layers; the last is the embedding width.
    dropout : dropout after each hidden layer.
    max_epochs, patience : early stopping on the validation rows (best epoch kept).
    validation_fraction : rows held out for early stopping (none below 20 rows).
    batch_size, lr, weight_decay : AdamW schedule.
    target_transform : ``auto`` (signed log for heavy-tailed labels, as the property models
        decide it), ``none`` or ``signed-log``; the net fits the standardised transformed y.
    max_minutes : wall-clock cap on training (``None``: none); the best epoch so far is kept.
    random_state, n_threads : seed and torch threads.
    """

    def __init__(
        self,
        hidden: Sequence[int] = (128, 64),
        dropout: float = 0.1,
        max_epochs: int = 150,
        patience: int = 15,
        validation_fraction: float = 0.1,
        batch_size: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        target_transform: str = "auto",
        max_minutes: float | None = None,
        random_state: int = 0,
        n_threads: int = 1,
    ) -> None:
        self.hidden = hidden
        self.dropout = dropout
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.target_transform = target_transform
        self.max_minutes = max_minutes
        self.random_state = random_state
        self.n_threads = n_threads

    # -- scaling ----------------------------------------------------------------------
    def _inputs(self, X: ArrayLike) -> torch.Tensor:
        arr = np.asarray(X, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != self.n_features_in_:
            raise ValueError(f"expected (n, {self.n_features_in_}) features, got {arr.shape}")
        z = (arr - self.input_mean_) / self.input_scale_
        return torch.from_numpy(
            np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
        )

    def _fit_scaling(self, X: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float32]:
        with np.errstate(all="ignore"):
            mean = np.nan_to_num(np.nanmean(X, axis=0))
            std = np.nanstd(X, axis=0)
        self.input_mean_ = mean
        self.input_scale_ = np.where(np.isfinite(std) & (std > 1e-12), std, 1.0)
        return self._fit_target_scaling(y)

    def _fit_target_scaling(self, y: NDArray[np.float64]) -> NDArray[np.float32]:
        """Standardised (transformed) labels; sets the transform and scaling to undo it."""
        self.y_transform_ = choose_target_transform(y, self.target_transform)
        t = self.y_transform_.forward(y)
        self.y_mean_ = float(np.mean(t))
        scale = float(np.std(t))
        self.y_scale_ = scale if np.isfinite(scale) and scale > 0 else 1.0
        return ((t - self.y_mean_) / self.y_scale_).astype(np.float32)

    def _net(self) -> SourceNet:
        return SourceNet(self.n_features_in_, self.hidden, self.dropout)

    # -- fitting ----------------------------------------------------------------------
    def fit(self, X: ArrayLike, y: ArrayLike) -> SourceMLP:
        """Train from scratch; rows without a label or without any finite feature are skipped."""
        X_arr = np.asarray(X, dtype=np.float64)
        y_arr = np.asarray(y, dtype=np.float64).reshape(-1)
        if X_arr.ndim != 2 or len(X_arr) != len(y_arr):
            raise ValueError(f"X {X_arr.shape} and y {y_arr.shape} do not match")
        rows = np.isfinite(y_arr) & np.isfinite(X_arr).any(axis=1)
        if rows.sum() < 2:
            raise ValueError("fewer than two rows with features and a label")
        X_arr, y_arr = X_arr[rows], y_arr[rows]
        self.n_features_in_ = X_arr.shape[1]
        target = torch.from_numpy(self._fit_scaling(X_arr, y_arr))
        torch.manual_seed(self.random_state)
        net = self._net()
        with torch_threads(self.n_threads):
            self.net_, self.best_epoch_, self.val_loss_ = train_regression(
                net,
                [(net.parameters(), self.lr)],
                self._inputs(X_arr),
                target,
                max_epochs=self.max_epochs,
                patience=self.patience,
                validation_fraction=self.validation_fraction,
                batch_size=self.batch_size,
                weight_decay=self.weight_decay,
                seed=self.random_state,
                max_minutes=self.max_minutes,
            )
        self.n_train_ = int(rows.sum())
        return self

    # -- outputs ----------------------------------------------------------------------
    def predict(self, X: ArrayLike) -> NDArray[np.float64]:
        """Predictions in the target's unit; NaN for rows without any finite feature."""
        check_is_fitted(self, "net_")
        arr = np.asarray(X, dtype=np.float64)
        with torch_threads(self.n_threads), torch.no_grad():
            out = self.net_.eval()(self._inputs(arr)).double().numpy()
        values = self.y_transform_.inverse(out * self.y_scale_ + self.y_mean_)
        values[~np.isfinite(arr).any(axis=1)] = np.nan
        return np.asarray(values, dtype=np.float64)

    @property
    def embedding_dim(self) -> int:
        return int(list(self.hidden)[-1]) if len(self.hidden) else int(self.n_features_in_)

    def embed(self, X: ArrayLike) -> NDArray[np.float32]:
        """Penultimate-layer activations (n, ``embedding_dim``); NaN rows where X has none."""
        check_is_fitted(self, "net_")
        arr = np.asarray(X, dtype=np.float64)
        with torch_threads(self.n_threads), torch.no_grad():
            out = self.net_.eval().body(self._inputs(arr)).numpy().astype(np.float32)
        out[~np.isfinite(arr).any(axis=1)] = np.nan
        return out

    # -- persistence ------------------------------------------------------------------
    def state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        """Learned state as JSON values and named float arrays (for safetensors)."""
        check_is_fitted(self, "net_")
        config = {
            "n_features_in": int(self.n_features_in_),
            "y_mean": self.y_mean_,
            "y_scale": self.y_scale_,
            "y_transform": self.y_transform_.to_dict(),
            "n_train": self.n_train_,
            "best_epoch": int(self.best_epoch_),
            "val_loss": float(self.val_loss_),
        }
        arrays = {
            f"net.{k}": v.detach().cpu().contiguous().numpy()
            for k, v in self.net_.state_dict().items()
        }
        arrays["input_mean"] = np.ascontiguousarray(self.input_mean_)
        arrays["input_scale"] = np.ascontiguousarray(self.input_scale_)
        return config, arrays

    def load_state(
        self, config: Mapping[str, Any], arrays: Mapping[str, NDArray[Any]]
    ) -> SourceMLP:
        """Restore :meth:`state` output onto an estimator built with the same parameters."""
        self.n_features_in_ = int(config["n_features_in"])
        self.y_mean_, self.y_scale_ = float(config["y_mean"]), float(config["y_scale"])
        self.y_transform_ = TargetTransform.from_dict(config.get("y_transform"))
        self.n_train_ = int(config.get("n_train", 0))
        self.best_epoch_ = int(config.get("best_epoch", 0))
        self.val_loss_ = float(config.get("val_loss", np.nan))
        self.input_mean_ = np.array(arrays["input_mean"], dtype=np.float64)
        self.input_scale_ = np.array(arrays["input_scale"], dtype=np.float64)
        net = self._net()
        weights = {
            k[4:]: torch.from_numpy(np.array(v)) for k, v in arrays.items() if k.startswith("net.")
        }
        net.load_state_dict(weights)
        self.net_ = net.eval()
        return self


def train_regression(
    net: SourceNet,
    groups: Sequence[tuple[Any, float]],
    X: torch.Tensor,
    target: torch.Tensor,
    *,
    max_epochs: int,
    patience: int,
    validation_fraction: float,
    batch_size: int,
    weight_decay: float,
    seed: int,
    max_minutes: float | None = None,
) -> tuple[SourceNet, int, float]:
    """MSE training with AdamW over parameter ``groups`` ((params, lr) pairs); early stopping.

    Shared by source training and fine-tuning (where the body's group has a lower learning
    rate than the new head's). Below 20 rows there is no validation split and every epoch
    runs; returns the net with its best weights, the best epoch and validation loss.
    """
    rng = np.random.default_rng(seed)
    val_rows, train = validation_split(len(target), validation_fraction, rng)
    val = torch.from_numpy(val_rows)
    opt = torch.optim.AdamW(
        [{"params": list(p), "lr": lr} for p, lr in groups], weight_decay=weight_decay
    )
    stopper = EarlyStopping(net, patience)
    deadline = None if max_minutes is None else time.monotonic() + 60.0 * max_minutes
    for epoch in range(max_epochs):
        net.train()
        for start in range(0, len(train), batch_size):
            idx = torch.from_numpy(train[start : start + batch_size])
            if len(idx) < 2 and len(train) >= 2:
                continue  # a lone row gives a meaningless (and noisy) gradient step
            loss = nn.functional.mse_loss(net(X[idx]), target[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        train = rng.permutation(train)
        current = None
        if len(val):
            net.eval()
            with torch.no_grad():
                current = float(nn.functional.mse_loss(net(X[val]), target[val]))
        if stopper.update(net, epoch, current):
            break
        if deadline is not None and time.monotonic() > deadline:
            logger.info("training stopped at epoch %d: time limit", epoch)
            break
    return stopper.restore(net), stopper.best_epoch, float(stopper.best_loss)
