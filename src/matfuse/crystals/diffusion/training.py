"""Training the crystal flow: resumable, time-boxed, logged step by step.

A run directory ``out`` holds:

- ``checkpoint/``: model, EMA copy, optimiser, torch RNG state and the step
  (:mod:`matfuse.pretrain.checkpoint`, written atomically every ``checkpoint_every`` steps),
  so ``kill -9`` loses at most those steps and ``resume=True`` continues *exactly*: the batch
  of step ``s`` is a pure function of ``(seed, s)`` and the noise comes from the restored RNG;
- ``metrics.jsonl``: one line per step (loss terms, learning rate, seconds), written with
  each checkpoint, so the log and the checkpoint never disagree;
- ``model/``: the exported model directory (EMA weights), rewritten at every checkpoint and
  at the end (:mod:`~matfuse.crystals.diffusion.persistence`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from matfuse.crystals.diffusion.data import CrystalSet
from matfuse.crystals.diffusion.flow import flow_matching_loss
from matfuse.crystals.diffusion.lattice import LatticeScaler
from matfuse.crystals.diffusion.model import DenoiserConfig, PeriodicDenoiser
from matfuse.crystals.diffusion.persistence import CrystalFlowModel, save_crystal_model

logger = logging.getLogger(__name__)

__all__ = ["TrainConfig", "TrainResult", "batch_indices", "train_crystal_flow"]

CHECKPOINT = "checkpoint"
METRICS = "metrics.jsonl"
MODEL = "model"


@dataclass
class TrainConfig:
    """Optimisation settings (stored in the checkpoint; a resume must use the same ones)."""

    batch_size: int = 128
    lr: float = 5e-4
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    lattice_weight: float = 1.0
    warmup_steps: int = 200
    max_steps: int | None = None
    max_minutes: float | None = None
    checkpoint_every: int = 200
    seed: int = 0


@dataclass
class TrainResult:
    """What a call to :func:`train_crystal_flow` did."""

    steps: int
    resumed_from: int
    cpu_seconds: float
    last_loss: float
    model_dir: Path
    history: list[dict[str, Any]] = field(default_factory=list)


class _State(nn.Module):
    """The trained network and its exponential moving average, saved as one state dict."""

    def __init__(self, config: DenoiserConfig) -> None:
        super().__init__()
        self.model = PeriodicDenoiser(config)
        self.ema = PeriodicDenoiser(config)
        self.ema.load_state_dict(self.model.state_dict())
        self.ema.requires_grad_(False)

    @torch.no_grad()
    def update_ema(self, decay: float) -> None:
        for e, p in zip(self.ema.parameters(), self.model.parameters(), strict=True):
            e.mul_(decay).add_(p.detach(), alpha=1 - decay)


def batch_indices(n: int, batch_size: int, seed: int, step: int) -> np.ndarray:
    """Rows of step ``step``: epochs are seeded permutations, so any step can be recomputed."""
    per_epoch = max(1, n // batch_size) if n >= batch_size else 1
    epoch, pos = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return order[pos * batch_size : (pos + 1) * batch_size]


def _read_metrics(path: Path, up_to: int) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill
        if int(row.get("step", -1)) <= up_to:
            rows.append(row)
    return rows


def _write_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    os.replace(tmp, path)


def _checkpoint_dir(out: Path) -> Path | None:
    """The newest complete checkpoint (a kill between the two renames leaves it as ``.tmp``)."""
    for cand in (out / CHECKPOINT, out / (CHECKPOINT + ".tmp")):
        if (cand / "state.json").exists():
            return cand
    return None


def train_crystal_flow(
    crystals: CrystalSet,
    out: str | Path,
    *,
    config: TrainConfig | None = None,
    architecture: DenoiserConfig | None = None,
    resume: bool = False,
    device: str = "cpu",
    name: str = "crystal-flow",
    data_note: str = "",
    on_step: Callable[[dict[str, Any]], object] | None = None,
) -> TrainResult:
    """Train (or, with ``resume``, continue training) a CSP flow model on ``crystals``.

    Stops after ``max_steps`` total steps or ``max_minutes`` of this call, whichever first,
    and leaves ``out/model`` loadable by
    :func:`~matfuse.crystals.diffusion.persistence.load_crystal_model`. ``FileExistsError``
    when ``out`` holds a run and ``resume`` is false; ``ValueError`` when a resume is asked
    with different settings.
    """
    from matfuse.pretrain.checkpoint import load_training_state, save_training_state

    cfg = config or TrainConfig()
    out = Path(out)
    ckpt = _checkpoint_dir(out)
    if ckpt is not None and not resume:
        raise FileExistsError(f"{out} already holds a training run; pass resume to continue it")
    out.mkdir(parents=True, exist_ok=True)

    saved: dict[str, Any] = {}
    if ckpt is not None:
        saved = json.loads((ckpt / "state.json").read_text())
        architecture = DenoiserConfig(**saved["architecture"])
        for key in ("batch_size", "lr", "seed", "ema_decay", "lattice_weight", "warmup_steps"):
            if saved["train"][key] != getattr(cfg, key):
                raise ValueError(
                    f"cannot resume {out}: {key} was {saved['train'][key]}, now {getattr(cfg, key)}"
                )
    architecture = architecture or DenoiserConfig()
    torch.manual_seed(cfg.seed)
    state = _State(architecture).to(device)
    optimizer = torch.optim.AdamW(
        state.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
    )
    scaler = LatticeScaler.fit(crystals.raw_lattices())
    for net in (state.model, state.ema):
        net.set_lattice_statistics(scaler.mean, scaler.std)
    step, cpu_seconds = 0, 0.0
    if ckpt is not None:
        saved = load_training_state(ckpt, state, optimizer, device)
        step, cpu_seconds = int(saved["step"]), float(saved["cpu_seconds"])
        scaler = LatticeScaler(**saved["lattice_scaler"])
        logger.info("resuming %s at step %d", out, step)
    resumed_from = step
    history = _read_metrics(out / METRICS, step)
    _write_metrics(out / METRICS, history)
    meta_data = {
        "n_train": len(crystals),
        "n_skipped": len(crystals.skipped),
        "max_atoms_seen": crystals.max_atoms,
        "elements_seen": sorted(
            {_symbol(int(z)) for types in crystals.atom_types for z in np.unique(types)}
        ),
        "data": data_note or saved.get("data", ""),
    }

    def export() -> None:
        meta = {
            **meta_data,
            "steps": step,
            "cpu_seconds": round(cpu_seconds, 1),
            "device": device,
            "train": asdict(cfg),
        }
        model = CrystalFlowModel(
            state.ema, scaler, name=name, sampling={"steps": 100, "coord_speedup": 0.0}, meta=meta
        )
        save_crystal_model(model, out / MODEL)

    def checkpoint() -> None:
        _write_metrics(out / METRICS, history)
        save_training_state(
            out / CHECKPOINT,
            state,
            optimizer,
            {
                "step": step,
                "cpu_seconds": cpu_seconds,
                "architecture": architecture.to_dict(),
                "train": asdict(cfg),
                "lattice_scaler": asdict(scaler),
                "data": meta_data["data"],
            },
        )
        export()

    started = time.monotonic()
    last_loss = float("nan")
    state.model.train()
    while cfg.max_steps is None or step < cfg.max_steps:
        if cfg.max_minutes is not None and time.monotonic() - started > 60 * cfg.max_minutes:
            logger.info("stopping after %.1f minutes", cfg.max_minutes)
            break
        t0 = time.process_time()
        lr = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup_steps))
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = crystals.batch(
            batch_indices(len(crystals), cfg.batch_size, cfg.seed, step).tolist()
        )
        losses = flow_matching_loss(state.model, batch.to(device), scaler, cfg.lattice_weight)
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(state.model.parameters(), cfg.grad_clip)
        optimizer.step()
        state.update_ema(cfg.ema_decay if step >= cfg.warmup_steps else 0.0)
        step += 1
        cpu_seconds += time.process_time() - t0
        last_loss = float(losses["total"].detach())
        row = {
            "step": step,
            "loss": last_loss,
            "coord": float(losses["coord"].detach()),
            "lattice": float(losses["lattice"].detach()),
            "grad_norm": float(grad_norm),
            "lr": lr,
            "cpu_seconds": round(cpu_seconds, 3),
        }
        history.append(row)
        if on_step is not None:
            on_step(row)
        if step % cfg.checkpoint_every == 0:
            checkpoint()
    checkpoint()
    return TrainResult(step, resumed_from, cpu_seconds, last_loss, out / MODEL, history)


def _symbol(z: int) -> str:
    from pymatgen.core import Element

    return Element.from_Z(z).symbol
