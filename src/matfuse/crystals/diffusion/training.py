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

Under ``torchrun --nproc-per-node N`` (gloo on CPUs, NCCL on GPUs) every rank builds the
same batch and draws the same noise (same seed, same RNG stream), then computes the loss on
its share of the crystals (every N-th); DDP averages the gradients, so with equal shares the
step is the single-process step (the test checks the loss curve). Rank 0 alone writes.
``init_from`` warm-starts a new run from a model directory (missing heads, e.g. the type
head of a de novo model started from a CSP model, keep their fresh initialisation).
``adapt_from`` fine-tunes a trained model with its weights frozen (MatterGen's adapters):
only the adapter embeddings and mixins are optimised and averaged, the lattice
standardisation, atom-count histogram and element vocabulary are the base's, and the base's
own conditions stay in the condition row (unknown, NaN, unless given at sampling).
The learning rate warms up linearly and then stays constant or follows a cosine to
``min_lr_ratio * lr`` at ``decay_steps`` (:func:`learning_rate`, a function of the step).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from matfuse.crystals.diffusion.conditions import ConditionScaler
from matfuse.crystals.diffusion.data import CrystalSet
from matfuse.crystals.diffusion.flow import draw_noise, flow_matching_loss, loss_denominators
from matfuse.crystals.diffusion.lattice import LatticeScaler
from matfuse.crystals.diffusion.model import DenoiserConfig, PeriodicDenoiser
from matfuse.crystals.diffusion.persistence import CrystalFlowModel, save_crystal_model

logger = logging.getLogger(__name__)

__all__ = ["TrainConfig", "TrainResult", "batch_indices", "learning_rate", "train_crystal_flow"]

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
    #: cosine decay of the learning rate from ``lr`` after warm-up to ``min_lr_ratio * lr``
    #: at this step (constant afterwards); ``None`` keeps it constant
    decay_steps: int | None = None
    min_lr_ratio: float = 0.05
    max_steps: int | None = None
    max_minutes: float | None = None
    checkpoint_every: int = 200
    seed: int = 0
    p_csp: float = 0.5
    p_drop: float = 0.2
    type_weight: float = 1.0


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
        # frozen weights are skipped: averaging a constant would still move its last bits
        for e, p in zip(self.ema.parameters(), self.model.parameters(), strict=True):
            if p.requires_grad:
                e.mul_(decay).add_(p.detach(), alpha=1 - decay)


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up over ``warmup_steps``, then constant or cosine-decayed (``decay_steps``).

    A pure function of the step, so a resumed run follows the same schedule.
    """
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / max(1, cfg.warmup_steps)
    if cfg.decay_steps is None or cfg.decay_steps <= cfg.warmup_steps:
        return cfg.lr
    progress = min(1.0, (step - cfg.warmup_steps) / (cfg.decay_steps - cfg.warmup_steps))
    floor = cfg.min_lr_ratio * cfg.lr
    return floor + 0.5 * (cfg.lr - floor) * (1.0 + math.cos(math.pi * progress))


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
    init_from: str | Path | None = None,
    adapt_from: str | Path | CrystalFlowModel | None = None,
) -> TrainResult:
    """Train (or, with ``resume``, continue training) a CSP flow model on ``crystals``.

    Stops after ``max_steps`` total steps or ``max_minutes`` of this call, whichever first,
    and leaves ``out/model`` loadable by
    :func:`~matfuse.crystals.diffusion.persistence.load_crystal_model`. ``FileExistsError``
    when ``out`` holds a run and ``resume`` is false; ``ValueError`` when a resume is asked
    with different settings.

    ``adapt_from`` fine-tunes a trained model MatterGen's way: its weights are copied and
    frozen, and the conditions of ``crystals`` (``property_names``) become adapters
    (:class:`~matfuse.crystals.diffusion.model.PeriodicDenoiser`), the only weights trained.
    """
    from matfuse.pretrain.checkpoint import load_training_state, save_training_state
    from matfuse.pretrain.distributed import init_distributed

    cfg = config or TrainConfig()
    rank, world = init_distributed(device)
    lead = rank == 0
    out = Path(out)
    ckpt = _checkpoint_dir(out)
    if ckpt is not None and not resume:
        raise FileExistsError(f"{out} already holds a training run; pass resume to continue it")
    if lead:
        out.mkdir(parents=True, exist_ok=True)

    saved: dict[str, Any] = {}
    if ckpt is not None:
        saved = json.loads((ckpt / "state.json").read_text())
        architecture = DenoiserConfig(**saved["architecture"])
        keys: tuple[str, ...] = ("batch_size", "lr", "seed", "ema_decay", "lattice_weight")
        keys += ("warmup_steps", "p_csp", "p_drop", "type_weight", "decay_steps", "min_lr_ratio")
        for key in keys:
            if saved["train"].get(key, getattr(TrainConfig, key)) != getattr(cfg, key):
                raise ValueError(
                    f"cannot resume {out}: {key} was {saved['train'].get(key)}, "
                    f"now {getattr(cfg, key)}"
                )
    base: CrystalFlowModel | None = None
    if adapt_from is not None and ckpt is None:
        if init_from is not None:
            raise ValueError("give init_from or adapt_from, not both")
        base = _load_base(adapt_from)
        architecture = _adapter_architecture(base, crystals)
    architecture = architecture or DenoiserConfig()
    conditions: ConditionScaler | None = None
    if not architecture.adapter_kinds:
        if architecture.n_conditions != len(crystals.property_names) or (
            architecture.base_kinds() != _kinds(crystals)
        ):
            architecture = dataclasses.replace(
                architecture,
                n_conditions=len(crystals.property_names),
                condition_kinds=_kinds(crystals) if crystals.property_names else [],
            )
        if crystals.property_names and crystals.properties is not None:
            conditions = ConditionScaler.fit(
                crystals.property_names,
                torch.as_tensor(crystals.properties, dtype=torch.float64),
                _kinds(crystals),
            )
    else:
        if base is not None:
            conditions = _adapter_conditions(base, crystals)
        crystals = _with_base_columns(crystals, sum(architecture.widths()[0]))
    torch.manual_seed(cfg.seed)
    state = _State(architecture).to(device)
    if init_from is not None and ckpt is None:
        _warm_start(state, init_from)
    if base is not None:
        _warm_start(state, base, strict=True)
    trainable = _trainable(state.model)
    optimizer = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
    # an adapter run keeps its base's lattice standardisation: the frozen weights expect it
    scaler = base.scaler if base is not None else LatticeScaler.fit(crystals.raw_lattices())
    for denoiser in (state.model, state.ema):
        denoiser.set_lattice_statistics(scaler.mean, scaler.std)
    step, cpu_seconds = 0, 0.0
    if ckpt is not None:
        saved = load_training_state(ckpt, state, optimizer, device)
        step, cpu_seconds = int(saved["step"]), float(saved["cpu_seconds"])
        scaler = LatticeScaler(**saved["lattice_scaler"])
        if saved.get("conditions"):
            conditions = ConditionScaler(**saved["conditions"])
        logger.info("resuming %s at step %d", out, step)
    resumed_from = step
    history = _read_metrics(out / METRICS, step)
    if lead:
        _write_metrics(out / METRICS, history)
    net: nn.Module = state.model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(state.model)  # every rank starts from rank 0's weights
    meta_data = {
        "n_train": len(crystals),
        "n_skipped": len(crystals.skipped),
        "max_atoms_seen": crystals.max_atoms,
        "elements_seen": sorted(
            {_symbol(int(z)) for types in crystals.atom_types for z in np.unique(types)}
        ),
        "data": data_note or saved.get("data", ""),
        "atom_counts": crystals.atom_count_histogram(),
        "init_from": str(init_from) if init_from is not None else saved.get("init_from"),
        "adapted_from": str(adapt_from) if adapt_from is not None else saved.get("adapted_from"),
    }
    if architecture.adapter_kinds:
        # de novo sampling of an adapted model draws sizes and elements as its base did
        donor = base.meta if base is not None else saved.get("base_meta", {})
        for key in ("max_atoms_seen", "elements_seen", "atom_counts"):
            if key in donor:
                meta_data[key] = donor[key]
        meta_data["base_meta"] = {
            k: donor[k] for k in ("max_atoms_seen", "elements_seen", "atom_counts") if k in donor
        }

    def export() -> None:
        meta = {
            **meta_data,
            "steps": step,
            "cpu_seconds": round(cpu_seconds, 1),
            "device": device,
            "world_size": world,
            "train": asdict(cfg),
        }
        sampling: dict[str, Any] = {"steps": 100, "coord_speedup": 0.0}
        if conditions is not None:
            sampling["guidance"] = 1.0
        model = CrystalFlowModel(
            state.ema, scaler, name=name, sampling=sampling, meta=meta, conditions=conditions
        )
        save_crystal_model(model, out / MODEL)

    def checkpoint() -> None:
        if not lead:
            return
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
                "conditions": asdict(conditions) if conditions is not None else None,
                "data": meta_data["data"],
                "init_from": meta_data["init_from"],
                "adapted_from": meta_data["adapted_from"],
                "base_meta": meta_data.get("base_meta", {}),
            },
        )
        export()

    started = time.monotonic()
    last_loss = float("nan")
    state.model.train()
    while cfg.max_steps is None or step < cfg.max_steps:
        stop = cfg.max_minutes is not None and time.monotonic() - started > 60 * cfg.max_minutes
        if world > 1:  # rank 0's clock decides for everyone, or the ranks would deadlock
            flag = torch.tensor([float(stop)], device=device)
            torch.distributed.broadcast(flag, 0)
            stop = bool(flag.item())
        if stop:
            logger.info("stopping after %.1f minutes", cfg.max_minutes)
            break
        t0 = time.process_time()
        lr = learning_rate(cfg, step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = crystals.batch(
            batch_indices(len(crystals), cfg.batch_size, cfg.seed, step).tolist()
        )
        batch = batch.to(device)
        noise = draw_noise(
            batch,
            types=architecture.type_head,
            n_conditions=architecture.n_conditions + len(architecture.adapter_kinds),
            p_csp=cfg.p_csp,
            p_drop=cfg.p_drop,
        )
        denominators = None
        if world > 1:  # this rank's share: every world-th crystal of the common batch
            denominators = loss_denominators(batch, noise, world)
            share = torch.arange(rank, batch.n_crystals, world, device=batch.frac.device)
            noise, batch = noise.select(batch, share), batch.select(share)
        losses = flow_matching_loss(
            net,
            batch,
            scaler,
            cfg.lattice_weight,
            noise=noise,
            conditions=conditions,
            type_weight=cfg.type_weight,
            denominators=denominators,
        )
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip)
        optimizer.step()
        state.update_ema(cfg.ema_decay if step >= cfg.warmup_steps else 0.0)
        step += 1
        terms = {k: v.detach().reshape(1) for k, v in losses.items()}
        spent = torch.tensor([time.process_time() - t0])
        if world > 1:  # the logged loss is the mean over ranks, the CPU time their sum
            for v in terms.values():
                torch.distributed.all_reduce(v)
                v /= world
            torch.distributed.all_reduce(spent)
        cpu_seconds += float(spent)
        last_loss = float(terms["total"])
        row = {
            "step": step,
            "loss": last_loss,
            **{k: float(v) for k, v in terms.items() if k != "total"},
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
    if world > 1:
        torch.distributed.barrier()  # rank 0 has written the final checkpoint and model
    return TrainResult(step, resumed_from, cpu_seconds, last_loss, out / MODEL, history)


def _warm_start(state: _State, source: str | Path | CrystalFlowModel, strict: bool = False) -> None:
    """Copy matching weights of a saved model into both the network and its EMA
    (``strict``: every weight of the source must fit, as for an adapter's base)."""
    donor = _load_base(source).denoiser.state_dict()
    own = state.model.state_dict()
    shared = {k: v for k, v in donor.items() if k in own and own[k].shape == v.shape}
    if strict and len(shared) != len(donor):
        raise ValueError(f"{sorted(set(donor) - set(shared))} do not fit the adapted model")
    skipped = sorted(set(own) - set(shared))
    for net in (state.model, state.ema):
        net.load_state_dict(shared, strict=False)
    logger.info("warm start from %s: %d tensors copied, new: %s", source, len(shared), skipped)


def _symbol(z: int) -> str:
    from pymatgen.core import Element

    return Element.from_Z(z).symbol


def _kinds(crystals: CrystalSet) -> list[str]:
    from matfuse.crystals.diffusion.conditions import kind_of

    return list(crystals.property_kinds) or [kind_of(n) for n in crystals.property_names]


def _load_base(source: str | Path | CrystalFlowModel) -> CrystalFlowModel:
    from matfuse.crystals.diffusion.persistence import load_crystal_model

    return source if isinstance(source, CrystalFlowModel) else load_crystal_model(source)


def _adapter_architecture(base: CrystalFlowModel, crystals: CrystalSet) -> DenoiserConfig:
    """The base model's architecture plus one adapter per condition of ``crystals``."""
    if not crystals.property_names or crystals.properties is None:
        raise ValueError("adapter fine-tuning needs at least one condition to learn")
    if base.denoiser.config.adapter_kinds:
        raise ValueError(f"model {base.name!r} already has adapters: adapt its base instead")
    known = set(base.conditions.names if base.conditions is not None else [])
    again = sorted(known & set(crystals.property_names))
    if again:
        raise ValueError(f"model {base.name!r} already conditions on {', '.join(again)}")
    return dataclasses.replace(base.denoiser.config, adapter_kinds=_kinds(crystals))


def _adapter_conditions(base: CrystalFlowModel, crystals: CrystalSet) -> ConditionScaler:
    """The base's conditions followed by the adapters' (fitted on the fine-tuning set)."""
    assert crystals.properties is not None
    adapters = ConditionScaler.fit(
        crystals.property_names,
        torch.as_tensor(crystals.properties, dtype=torch.float64),
        _kinds(crystals),
    )
    if base.conditions is None:
        return adapters
    return base.conditions.concat(adapters)


def _with_base_columns(crystals: CrystalSet, width: int) -> CrystalSet:
    """The fine-tuning rows with NaN (no condition) in front for the base conditions."""
    if not width or crystals.properties is None:
        return crystals
    nan = np.full((len(crystals), width), np.nan)
    return dataclasses.replace(crystals, properties=np.concatenate([nan, crystals.properties], 1))


def _trainable(model: PeriodicDenoiser) -> list[nn.Parameter]:
    """All weights, or only the adapters of a model that has them (the rest frozen)."""
    if not model.config.adapter_kinds:
        return list(model.parameters())
    model.requires_grad_(False)
    adapters = model.adapter_parameters()
    for param in adapters:
        param.requires_grad_(True)
    return adapters
