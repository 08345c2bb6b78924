"""Training checkpoints: what makes resuming a pretraining run exact.

A checkpoint holds the model weights (safetensors), the optimiser state (loaded with
``weights_only=True``, so it cannot run code), the RNG state and the stream position. The
exported model directory a run ends with is :mod:`matfuse.foundation.model_dir`'s.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from matfuse.foundation.model_dir import state_tensors


def save_training_state(
    ckpt: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict
) -> None:
    """Model, optimiser, RNG and position, written atomically so a kill never corrupts it."""
    tmp = ckpt.with_name(ckpt.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(state_tensors(model), tmp / "model.safetensors")
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
