"""Saving and loading foundation models: a directory, never a pickle.

A *model directory* (what ships under ``matfuse/weights/<name>/``) holds
``config.json`` (architecture, language, name), ``vocab.json``, ``model.safetensors``,
``latent_stats.safetensors`` (mean and Cholesky factor of the aggregate posterior, used to
sample the prior) and ``MODEL_CARD.md``. A *training checkpoint* adds the optimiser state
(loaded with ``weights_only=True``, so it cannot run code), the RNG state and the stream
position, which is what makes resuming exact.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from matfuse.pretrain.autoencoder import ModelConfig, MoleculeAutoencoder
from matfuse.pretrain.tokenizers import Tokenizer

FORMAT_VERSION = 1


@dataclass
class LoadedModel:
    """A foundation model ready for inference."""

    name: str
    model: MoleculeAutoencoder
    tokenizer: Tokenizer
    config: ModelConfig
    latent_mean: torch.Tensor
    latent_chol: torch.Tensor
    meta: dict


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def save_model_dir(
    out: str | Path,
    name: str,
    model: MoleculeAutoencoder,
    tokenizer: Tokenizer,
    latent_mean: torch.Tensor | None = None,
    latent_chol: torch.Tensor | None = None,
    meta: dict | None = None,
) -> Path:
    """Write a self-contained model directory (atomically: temp dir, then rename)."""
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    d = model.cfg.latent_dim
    mean = latent_mean if latent_mean is not None else torch.zeros(d)
    chol = latent_chol if latent_chol is not None else torch.eye(d)
    config = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "architecture": model.cfg.to_dict(),
        "meta": meta or {},
    }
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    tokenizer.save(tmp / "vocab.json")
    save_file(_state(model), tmp / "model.safetensors")
    save_file(
        {"mean": mean.float().contiguous(), "chol": chol.float().contiguous()},
        tmp / "latent_stats.safetensors",
    )
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def weights_identity(path: str | Path) -> dict:
    """Training steps and a 16-character sha256 prefix of a model directory's weights.

    Weights get retrained under the same name; a result or a derived run is only meaningful
    next to the checkpoint that produced it, so this is what gets recorded.
    """
    path = Path(path)
    config = json.loads((path / "config.json").read_text())
    digest = hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()[:16]
    return {"steps": config.get("meta", {}).get("steps"), "sha256": digest}


def load_model_dir(path: str | Path, device: str = "cpu") -> LoadedModel:
    path = Path(path)
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path} is not a matfuse model directory (no config.json)")
    config = json.loads((path / "config.json").read_text())
    cfg = ModelConfig(**config["architecture"])
    tokenizer = Tokenizer.load(path / "vocab.json")
    model = MoleculeAutoencoder(cfg, len(tokenizer))
    model.load_state_dict(load_file(path / "model.safetensors", device=device))
    model.to(device).eval()
    stats = load_file(path / "latent_stats.safetensors", device=device)
    return LoadedModel(
        name=config["name"],
        model=model,
        tokenizer=tokenizer,
        config=cfg,
        latent_mean=stats["mean"],
        latent_chol=stats["chol"],
        meta=config.get("meta", {}),
    )


def save_training_state(
    ckpt: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict
) -> None:
    """Model, optimiser, RNG and position, written atomically so a kill never corrupts it."""
    tmp = ckpt.with_name(ckpt.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(_state(model), tmp / "model.safetensors")
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    save_file({"torch": torch.get_rng_state()}, tmp / "rng.safetensors")
    (tmp / "state.json").write_text(json.dumps(state, indent=2))
    if ckpt.exists():
        shutil.rmtree(ckpt)
    os.replace(tmp, ckpt)


def load_training_state(
    ckpt: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, device: str
) -> dict:
    model.load_state_dict(load_file(ckpt / "model.safetensors", device=device))
    optimizer.load_state_dict(
        torch.load(ckpt / "optimizer.pt", map_location=device, weights_only=True)
    )
    torch.set_rng_state(load_file(ckpt / "rng.safetensors")["torch"])
    return json.loads((ckpt / "state.json").read_text())
