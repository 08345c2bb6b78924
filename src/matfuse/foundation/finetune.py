"""Fine-tuning a pretrained molecular encoder end to end on one property.

The frozen encoders (:mod:`matfuse.foundation.encoders`) give a fixed latent that a
downstream model reads; here the encoder itself learns from the labels. The network is the
pretrained encoder (``selfies-ted``, ``smi-ted``, ``smi-ssed`` transformer/Mamba over
tokens, or the ``graph-ged`` GIN over the molecular graph) with its pooled latent feeding a
small head (LayerNorm -> dropout -> Linear -> GELU -> dropout -> Linear); the decoder is
not needed and not kept.

Why these training choices (small data is the point of fine-tuning):

* the encoder learns at ``encoder_lr`` (default 10x below the head's ``head_lr``) and is
  frozen for the first ``warmup_epochs``, so the randomly initialised head does not send
  large gradients into pretrained weights;
* ``freeze_layers`` keeps the embeddings and the first layers fixed (0: all train);
* early stopping on a seeded validation split carved from the training rows keeps the best
  epoch's weights; ``max_epochs`` and ``max_minutes`` cap the cost.

Uncertainty is **MC dropout in the head**: ``predict_std`` is the spread of ``mc_samples``
passes with the head's dropout active over the (deterministic) latent. It is cheap, but it
says nothing about the encoder's own uncertainty, so it underestimates the total; the
prediction itself is the deterministic (dropout off) pass, so a saved and reloaded model
predicts identically.

>>> reg = FinetunedEncoderRegressor("selfies-ted", max_epochs=20)  # doctest: +SKIP
>>> reg.fit(smiles, y).predict(new_smiles), reg.predict_std(new_smiles)  # doctest: +SKIP

Registered as ``finetune-selfies-ted``, ``finetune-smi-ted``, ``finetune-smi-ssed`` and
``finetune-graph-ged`` (end-to-end models over molecules, like ``crystal-graph`` over
structures): ``matfuse train --model finetune-selfies-ted``. Inside
:class:`~matfuse.pipeline.PropertyModel` the weights persist as safetensors and the
architecture, vocabulary and scaling as JSON (:meth:`state` / :meth:`load_state`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from matfuse.chem.standardize import ParsedMolecules, parse_smiles
from matfuse.foundation.autoencoder import ModelConfig, MoleculeAutoencoder, SequenceEncoder
from matfuse.foundation.examples import Example, collate, make_example
from matfuse.foundation.graphs import GINEncoder
from matfuse.foundation.tokenizers import EOS_ID, PAD_ID, Tokenizer
from matfuse.foundation.weights import weights_dir
from matfuse.models.class_balance import BalancedBinaryTarget
from matfuse.models.early_stopping import EarlyStopping, validation_split
from matfuse.models.threads import torch_threads
from matfuse.progress import stage

logger = logging.getLogger(__name__)

__all__ = [
    "FINETUNABLE",
    "FinetuneNet",
    "FinetunedEncoderClassifier",
    "FinetunedEncoderRegressor",
]

#: The shipped encoders that can be fine-tuned (every one of our encoder-decoders).
FINETUNABLE: tuple[str, ...] = ("selfies-ted", "smi-ted", "smi-ssed", "graph-ged")
#: ``callback(info)`` after every epoch; ``info`` has epoch, train_loss, val_loss, seconds.
EpochCallback = Callable[[dict[str, float]], object]


class FinetuneNet(nn.Module):
    """A foundation model's encoder and latent projection, plus a small prediction head."""

    def __init__(
        self, cfg: ModelConfig, vocab_size: int, hidden: int = 128, dropout: float = 0.1
    ) -> None:
        super().__init__()
        autoencoder = MoleculeAutoencoder(cfg, vocab_size)  # its decoder is dropped here
        self.kind = cfg.encoder
        self.encoder = autoencoder.encoder
        self.to_latent = autoencoder.to_latent
        d = cfg.latent_dim
        self.head = nn.Sequential(
            nn.LayerNorm(d),
            nn.Dropout(dropout),
            nn.Linear(d, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, 1),
        )

    def latent(self, batch: Any) -> torch.Tensor:
        """Pooled latent (b, latent_dim), as :meth:`MoleculeAutoencoder.encode` computes it."""
        if self.kind == "ged":
            h = self.encoder(batch.graph)
            pooled = GINEncoder.pool(h, batch.graph)
        else:
            h = self.encoder(batch.tokens)
            mask = (batch.tokens != PAD_ID).unsqueeze(-1).to(h.dtype)
            pooled = (h * mask).sum(1) / mask.sum(1).clamp(min=1)
        return self.to_latent(pooled)

    def forward(self, batch: Any) -> torch.Tensor:
        return self.head(self.latent(batch)).squeeze(-1)

    def encoder_groups(self) -> tuple[list[nn.Module], list[nn.Module]]:
        """(embeddings, layers in input order) of the encoder, what ``freeze_layers`` counts."""
        encoder = self.encoder
        if isinstance(encoder, GINEncoder):
            return [encoder.atom], list(encoder.layers)
        assert isinstance(encoder, SequenceEncoder)
        stack = cast(Any, encoder.stack)  # TransformerEncoder or MambaStack: both have layers
        return [encoder.embed, encoder.pos], list(stack.layers)

    def encoder_parameters(self) -> list[nn.Parameter]:
        return [*self.encoder.parameters(), *self.to_latent.parameters()]


def _examples(smiles: Sequence[str | None], tokenizer: Tokenizer, cfg: ModelConfig):
    """Model inputs per SMILES (None where unreadable); too-long strings are cut to fit,
    as the frozen encoders do, so a long molecule is described by its prefix."""
    out: list[Example | None] = []
    for smi in smiles:
        ex = make_example(smi, tokenizer, 10**6, cfg.encoder == "ged") if smi else None
        if ex is not None and len(ex.ids) > cfg.max_len:
            ex.ids = [*ex.ids[: cfg.max_len - 1], EOS_ID]
        out.append(ex)
    return out


class _FinetunedEncoder(BaseEstimator):
    """Shared fitting, prediction and persistence of the fine-tuned encoder estimators.

    Parameters
    ----------
    encoder : name of a shipped foundation model (see :data:`FINETUNABLE`).
    path : a model directory to start from instead (``matfuse pretrain`` output).
    head_hidden, dropout : hidden width and dropout of the head (dropout also drives
        ``predict_std``).
    head_lr, encoder_lr : AdamW learning rates of the head and of the encoder.
    weight_decay : AdamW weight decay (both groups).
    warmup_epochs : epochs at the start during which only the head trains.
    freeze_layers : encoder layers kept frozen, counted from the input; any value above 0
        freezes the embeddings too. Use a large value to train the head only.
    max_epochs, patience : stop when the validation loss has not improved for ``patience``
        epochs; the best epoch's weights are kept.
    max_minutes : wall-clock budget of one fit (None: none); the best weights so far are kept.
    validation_fraction : training rows held out (seeded) for early stopping; below 20 rows
        there is none and all ``max_epochs`` run.
    batch_size : molecules per step.
    mc_samples : dropout passes behind ``predict_std``.
    random_state : seeds the split, the head's initialisation, batches and dropout.
    n_threads : torch threads (1: small batches, shared machines).
    callback : called with a dict (epoch, train_loss, val_loss, seconds) after every epoch;
        every epoch is also a :func:`matfuse.progress.stage` for the CLI and UI.
    """

    _task: ClassVar[str] = "regression"

    def __init__(
        self,
        encoder: str = "selfies-ted",
        path: str | None = None,
        head_hidden: int = 128,
        dropout: float = 0.1,
        head_lr: float = 1e-3,
        encoder_lr: float = 1e-4,
        weight_decay: float = 1e-2,
        warmup_epochs: int = 1,
        freeze_layers: int = 0,
        max_epochs: int = 30,
        patience: int = 6,
        max_minutes: float | None = None,
        validation_fraction: float = 0.1,
        batch_size: int = 32,
        mc_samples: int = 20,
        random_state: int = 0,
        n_threads: int = 1,
        callback: EpochCallback | None = None,
    ) -> None:
        self.encoder = encoder
        self.path = path
        self.head_hidden = head_hidden
        self.dropout = dropout
        self.head_lr = head_lr
        self.encoder_lr = encoder_lr
        self.weight_decay = weight_decay
        self.warmup_epochs = warmup_epochs
        self.freeze_layers = freeze_layers
        self.max_epochs = max_epochs
        self.patience = patience
        self.max_minutes = max_minutes
        self.validation_fraction = validation_fraction
        self.batch_size = batch_size
        self.mc_samples = mc_samples
        self.random_state = random_state
        self.n_threads = n_threads
        self.callback = callback

    # -- the pretrained model ---------------------------------------------------------
    def _model_dir(self) -> Path:
        if self.path:
            return Path(self.path)
        if self.encoder not in FINETUNABLE:
            raise ValueError(f"encoder must be one of {FINETUNABLE}, got {self.encoder!r}")
        return weights_dir(self.encoder)

    def _language(self) -> tuple[Tokenizer, ModelConfig]:
        """Tokeniser and architecture: the fitted model's, else the pretrained directory's."""
        if hasattr(self, "tokenizer_"):
            return self.tokenizer_, self.config_
        from matfuse.foundation.model_dir import load_model_dir

        loaded = load_model_dir(self._model_dir())
        return loaded.tokenizer, loaded.config

    # -- inputs -----------------------------------------------------------------------
    def featurize(self, X: Any) -> list[Example | None]:
        """The model's input per row (``None`` where a molecule cannot be read).

        Takes SMILES, RDKit molecules, a :class:`ParsedMolecules` or this method's own
        output (compute it once to fit several targets or seeds).
        """
        if isinstance(X, str):
            X = [X]
        if isinstance(X, np.ndarray) and X.dtype.kind in "biuf":
            raise ValueError(
                f"{self.encoder} fine-tuning learns from molecules, not from a feature "
                "matrix; give it SMILES"
            )
        rows = X if isinstance(X, ParsedMolecules) else list(X)
        if isinstance(rows, list) and all(isinstance(r, Example | None) for r in rows):
            return list(rows)
        parsed = rows if isinstance(rows, ParsedMolecules) else parse_smiles(rows)
        tokenizer, cfg = self._language()
        return _examples(parsed.canonical, tokenizer, cfg)

    # -- fitting ----------------------------------------------------------------------
    def _prepare_target(self, y: NDArray[np.float64]) -> NDArray[np.float32]:
        raise NotImplementedError

    def _loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _pretrained_net(self) -> FinetuneNet:
        from matfuse.foundation.model_dir import load_model_dir

        loaded = load_model_dir(self._model_dir())
        self.tokenizer_, self.config_ = loaded.tokenizer, loaded.config
        net = FinetuneNet(loaded.config, len(loaded.tokenizer), self.head_hidden, self.dropout)
        net.encoder.load_state_dict(loaded.model.encoder.state_dict())
        net.to_latent.load_state_dict(loaded.model.to_latent.state_dict())
        return net

    def _set_frozen(self, net: FinetuneNet, warming_up: bool) -> None:
        for p in net.encoder_parameters():
            p.requires_grad_(not warming_up)
        if warming_up or self.freeze_layers <= 0:
            return
        embeddings, layers = net.encoder_groups()
        for module in [*embeddings, *layers[: self.freeze_layers]]:
            for p in module.parameters():
                p.requires_grad_(False)

    def fit(self, X: Any, y: Any) -> _FinetunedEncoder:
        """Fine-tune on the valid, labelled rows (others are skipped, never fatal)."""
        torch.manual_seed(self.random_state)
        net = self._pretrained_net()
        examples = self.featurize(X)
        y_arr = np.asarray(y, dtype=np.float64).reshape(-1)
        if len(examples) != y_arr.size:
            raise ValueError(f"{len(examples)} molecules for {y_arr.size} targets")
        rows = np.array(
            [e is not None and np.isfinite(v) for e, v in zip(examples, y_arr, strict=True)]
        )
        if rows.sum() < 2:
            raise ValueError("fewer than two readable molecules with a label")
        data = [e for e, keep in zip(examples, rows, strict=True) if keep and e is not None]
        target = torch.from_numpy(self._prepare_target(y_arr[rows]))
        rng = np.random.default_rng(self.random_state)
        val, train = validation_split(len(data), self.validation_fraction, rng)
        with torch_threads(self.n_threads):
            self.net_ = self._train(net, data, target, train, val, rng)
        self.n_train_ = int(len(train))
        return self

    def _train(
        self,
        net: FinetuneNet,
        data: list[Example],
        target: torch.Tensor,
        train: np.ndarray,
        val: np.ndarray,
        rng: np.random.Generator,
    ) -> FinetuneNet:
        opt = torch.optim.AdamW(
            [
                {"params": list(net.head.parameters()), "lr": self.head_lr},
                {"params": net.encoder_parameters(), "lr": self.encoder_lr},
            ],
            weight_decay=self.weight_decay,
        )
        began = time.perf_counter()
        stopper = EarlyStopping(net, self.patience, best_epoch=-1)
        self.history_ = []
        for epoch in range(self.max_epochs):
            stage("epoch", f"fine-tune {self.encoder}", epoch, self.max_epochs)
            self._set_frozen(net, warming_up=epoch < self.warmup_epochs)
            net.train()
            total = 0.0
            for start in range(0, len(train), self.batch_size):
                idx = train[start : start + self.batch_size]
                loss = self._loss(net(collate([data[i] for i in idx])), target[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            train = rng.permutation(train)
            val_loss = self._evaluate(net, data, target, val) if len(val) else float("nan")
            seconds = time.perf_counter() - began
            info = {"epoch": epoch, "train_loss": total / max(len(train), 1)}
            info.update(val_loss=val_loss, seconds=round(seconds, 2))
            self.history_.append(info)
            if self.callback is not None:
                self.callback(info)
            stopper.update(net, epoch, val_loss if len(val) else None)
            # checked after improvements too, so that patience 0 means a single epoch
            if len(val) and stopper.stale >= self.patience:
                break
            if self.max_minutes is not None and seconds / 60 > self.max_minutes:
                logger.info("fine-tuning stopped by max_minutes after epoch %d", epoch)
                break
        self.best_epoch_ = stopper.best_epoch
        # without validation rows there is no validation loss to report
        self.best_val_loss_ = float(stopper.best_loss) if len(val) else float("nan")
        return stopper.restore(net)

    @torch.no_grad()
    def _evaluate(
        self, net: FinetuneNet, data: list[Example], target: torch.Tensor, rows: np.ndarray
    ) -> float:
        net.eval()
        out = torch.cat(
            [net(collate([data[i] for i in rows[s : s + 256]])) for s in range(0, len(rows), 256)]
        )
        return float(self._loss(out, target[rows]))

    # -- predicting -------------------------------------------------------------------
    @torch.no_grad()
    def _outputs(self, X: Any, mc_samples: int = 0) -> NDArray[np.float64]:
        """Raw head outputs (1 + mc_samples, n): the deterministic pass, then MC-dropout
        passes (seeded, so repeated calls agree); NaN columns for unreadable rows."""
        check_is_fitted(self, "net_")
        examples = self.featurize(X)
        ok = [i for i, e in enumerate(examples) if e is not None]
        readable = [e for e in examples if e is not None]  # the examples at ``ok``
        out = np.full((1 + mc_samples, len(examples)), np.nan)
        gen = torch.Generator().manual_seed(self.random_state)
        with torch_threads(self.n_threads):
            self.net_.eval()
            for s in range(0, len(ok), 256):
                chunk = ok[s : s + 256]
                z = self.net_.latent(collate(readable[s : s + 256]))
                out[0, chunk] = self.net_.head(z).squeeze(-1).double().numpy()
                for k in range(mc_samples):
                    out[1 + k, chunk] = self._mc_pass(z, gen).double().numpy()
        return out

    def _mc_pass(self, z: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """One head pass with dropout active, drawn from ``gen`` (not the global RNG)."""
        x = z
        for layer in self.net_.head:
            if isinstance(layer, nn.Dropout) and layer.p > 0:
                keep = torch.rand(x.shape, generator=gen) >= layer.p
                x = x * keep / (1.0 - layer.p)
            else:
                x = layer(x)
        return x.squeeze(-1)

    # -- persistence ------------------------------------------------------------------
    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Learned state as JSON-able values and named float arrays (for safetensors).

        The architecture and vocabulary travel with it, so a saved model does not depend on
        the shipped weights staying the same.
        """
        check_is_fitted(self, "net_")
        config = {
            "architecture": self.config_.to_dict(),
            "vocabulary": self.tokenizer_.to_dict(),
            "n_train": self.n_train_,
            "best_epoch": self.best_epoch_,
            "best_val_loss": self.best_val_loss_ if np.isfinite(self.best_val_loss_) else None,
            "history": self.history_,
            **self._target_state(),
        }
        arrays = {
            k: v.detach().cpu().contiguous().numpy() for k, v in self.net_.state_dict().items()
        }
        return config, arrays

    def load_state(
        self, config: dict[str, Any], arrays: dict[str, np.ndarray]
    ) -> _FinetunedEncoder:
        """Restore what :meth:`state` returned onto an estimator with the same params."""
        self.config_ = ModelConfig(**config["architecture"])
        self.tokenizer_ = Tokenizer.from_dict(config["vocabulary"])
        net = FinetuneNet(self.config_, len(self.tokenizer_), self.head_hidden, self.dropout)
        net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()})
        self.net_ = net.eval()
        self.n_train_ = int(config["n_train"])
        self.best_epoch_ = int(config["best_epoch"])
        loss = config.get("best_val_loss")
        self.best_val_loss_ = float("nan") if loss is None else float(loss)
        self.history_ = list(config.get("history", []))
        self._load_target_state(config)
        return self

    def _target_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def _load_target_state(self, config: dict[str, Any]) -> None:
        raise NotImplementedError


class FinetunedEncoderRegressor(RegressorMixin, _FinetunedEncoder):
    """Fine-tuned encoder for a regression target (MSE on the standardised target)."""

    def _prepare_target(self, y: NDArray[np.float64]) -> NDArray[np.float32]:
        self.y_mean_ = float(np.mean(y))
        std = float(np.std(y))
        self.y_std_ = std if np.isfinite(std) and std > 0 else 1.0
        return ((y - self.y_mean_) / self.y_std_).astype(np.float32)

    def _loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(out, target)

    def predict(self, X: Any) -> NDArray[np.float64]:
        """Predictions in the target's unit; NaN for molecules the model cannot read."""
        return self._outputs(X)[0] * self.y_std_ + self.y_mean_

    def predict_std(self, X: Any) -> NDArray[np.float64]:
        """MC-dropout spread of the head (see the module docstring for what it misses)."""
        samples = self._outputs(X, max(self.mc_samples, 2))[1:]
        return samples.std(axis=0, ddof=1) * self.y_std_

    def _target_state(self) -> dict[str, Any]:
        return {"y_mean": self.y_mean_, "y_std": self.y_std_}

    def _load_target_state(self, config: dict[str, Any]) -> None:
        self.y_mean_, self.y_std_ = float(config["y_mean"]), float(config["y_std"])


class FinetunedEncoderClassifier(BalancedBinaryTarget, ClassifierMixin, _FinetunedEncoder):
    """Fine-tuned encoder for a binary target (logistic loss).

    Parameters
    ----------
    class_weight : ``"balanced"`` (default) weights each class's rows in the training and
        early-stopping loss by ``n / (2 n_class)``; ``None`` weighs every row alike. Why:
        see :mod:`matfuse.models.class_balance` (HIV's 3.5 % actives stopped the unweighted
        fine-tuning within five epochs). Measured on selfies-ted, 3 seeds
        (``benchmarks/results/multimodal_finetune_balance.md``): ClinTox 0.836 +- 0.018 against
        0.823 +- 0.011 unweighted, HIV 0.656 +- 0.020 against 0.663 +- 0.036: within noise
        both ways, so the default follows the learned-fusion classifiers for one rule in the
        house. Probabilities keep the data's base rate.
    Other parameters: as :class:`FinetunedEncoderRegressor`.
    """

    _task: ClassVar[str] = "classification"

    def __init__(
        self,
        encoder: str = "selfies-ted",
        path: str | None = None,
        head_hidden: int = 128,
        dropout: float = 0.1,
        head_lr: float = 1e-3,
        encoder_lr: float = 1e-4,
        weight_decay: float = 1e-2,
        warmup_epochs: int = 1,
        freeze_layers: int = 0,
        max_epochs: int = 30,
        patience: int = 6,
        max_minutes: float | None = None,
        validation_fraction: float = 0.1,
        batch_size: int = 32,
        mc_samples: int = 20,
        random_state: int = 0,
        n_threads: int = 1,
        callback: EpochCallback | None = None,
        class_weight: str | None = "balanced",
    ) -> None:
        super().__init__(
            encoder=encoder,
            path=path,
            head_hidden=head_hidden,
            dropout=dropout,
            head_lr=head_lr,
            encoder_lr=encoder_lr,
            weight_decay=weight_decay,
            warmup_epochs=warmup_epochs,
            freeze_layers=freeze_layers,
            max_epochs=max_epochs,
            patience=patience,
            max_minutes=max_minutes,
            validation_fraction=validation_fraction,
            batch_size=batch_size,
            mc_samples=mc_samples,
            random_state=random_state,
            n_threads=n_threads,
            callback=callback,
        )
        self.class_weight = class_weight

    def _positive_proba(self, logits: NDArray[np.float64]) -> NDArray[np.float64]:
        out: NDArray[np.float64] = 1.0 / (1.0 + np.exp(-(logits + self.logit_offset_)))
        return out

    def predict_proba(self, X: Any) -> NDArray[np.float64]:
        """(n, 2) class probabilities; NaN rows for molecules the model cannot read."""
        p = self._positive_proba(self._outputs(X)[0])
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> NDArray[Any]:
        p = self.predict_proba(X)[:, 1]
        labels = np.where(p >= 0.5, self.classes_[1], self.classes_[0])
        return np.where(np.isfinite(p), labels, np.nan) if labels.dtype.kind == "f" else labels

    def predict_std(self, X: Any) -> NDArray[np.float64]:
        """MC-dropout spread of the positive-class probability."""
        samples = self._positive_proba(self._outputs(X, max(self.mc_samples, 2))[1:])
        return samples.std(axis=0, ddof=1)

    def _target_state(self) -> dict[str, Any]:
        return {"classes": self.classes_.tolist(), "logit_offset": self.logit_offset_}

    def _load_target_state(self, config: dict[str, Any]) -> None:
        self.classes_ = np.asarray(config["classes"], dtype=float)
        # models saved before class weighting have no offset: their logits are unshifted
        self.logit_offset_ = float(config.get("logit_offset", 0.0))
