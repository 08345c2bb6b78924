"""Saving and loading foundation models: a directory, never a pickle.

A *model directory* (what ships under ``matfuse/weights/<name>/``) holds
``config.json`` (architecture, language, name), ``vocab.json``, ``model.safetensors``,
``latent_stats.safetensors`` (mean and Cholesky factor of the aggregate posterior, used to
sample the prior), ``MODEL_CARD.md`` and ``manifest.json`` (size and sha256 of every file but
the card, checked before anything is loaded: see :mod:`matfuse.models.manifest`). Training
checkpoints, which also hold the optimiser and RNG state, are
:mod:`matfuse.pretrain.checkpoint`'s.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save_file

from matfuse.foundation.autoencoder import ModelConfig, MoleculeAutoencoder
from matfuse.foundation.tokenizers import Tokenizer

FORMAT_VERSION = 1
#: The manifest kind of a model directory, and the entries an export owns (replaces).
MODEL_KIND = "matfuse.foundation.FoundationModel"
_OWNED = frozenset(
    {"config.json", "vocab.json", "model.safetensors", "latent_stats.safetensors", "MODEL_CARD.md"}
)
#: Left out of the manifest: the card is documentation, written after the weights by the
#: exporter and rewritten by the benchmarks, and nothing that computes reads it.
UNLISTED = frozenset({"MODEL_CARD.md"})


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


def state_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A model's parameters and buffers on the CPU, contiguous: what safetensors writes."""
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
    """Write a self-contained model directory (atomically: temp dir, manifest, then rename).

    ``MODEL_CARD.md`` is written by the caller afterwards and stays out of the manifest (see
    :data:`UNLISTED`); a card of a previous model at ``out`` is not carried over.
    """
    from matfuse.models.manifest import atomic_directory  # lazy: matfuse.models loads sklearn

    out = Path(out)
    d = model.cfg.latent_dim
    mean = latent_mean if latent_mean is not None else torch.zeros(d)
    chol = latent_chol if latent_chol is not None else torch.eye(d)
    config = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "architecture": model.cfg.to_dict(),
        "meta": meta or {},
    }
    with atomic_directory(out, MODEL_KIND, owns=_OWNED.__contains__, ignore=UNLISTED) as tmp:
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        tokenizer.save(tmp / "vocab.json")
        save_file(state_tensors(model), tmp / "model.safetensors")
        save_file(
            {"mean": mean.float().contiguous(), "chol": chol.float().contiguous()},
            tmp / "latent_stats.safetensors",
        )
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
    """Load a model directory after checking every file against its manifest.

    Shipped weights and user exports (``--init-from DIR``, ``path=DIR``) go through the same
    check; the files are parsed from the bytes that were checked.
    """
    from matfuse.models.manifest import verify_manifest  # lazy: matfuse.models loads sklearn

    path = Path(path)
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path} is not a matfuse model directory (no config.json)")
    manifest = verify_manifest(path, MODEL_KIND, ignore=UNLISTED)
    config = manifest.read_json("config.json")
    cfg = ModelConfig(**config["architecture"])
    tokenizer = Tokenizer.from_dict(manifest.read_json("vocab.json"))
    model = MoleculeAutoencoder(cfg, len(tokenizer))
    model.load_state_dict(_tensors(manifest.read_bytes("model.safetensors"), device))
    model.to(device).eval()
    stats = _tensors(manifest.read_bytes("latent_stats.safetensors"), device)
    return LoadedModel(
        name=config["name"],
        model=model,
        tokenizer=tokenizer,
        config=cfg,
        latent_mean=stats["mean"],
        latent_chol=stats["chol"],
        meta=config.get("meta", {}),
    )


def _tensors(data: bytes, device: str) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in load_safetensors(data).items()}
