"""What the two pretraining loops share: the optimiser schedule, resuming a saved configuration
and the metrics log.

``matfuse pretrain`` (:mod:`matfuse.pretrain.trainer`) and ``matfuse clm-train``
(:mod:`matfuse.pretrain.clm`) train different models on the same streamed corpus with the same
AdamW + warm-up/cosine schedule and the same resume rules, so those rules live here once and
a fix to one reaches both. Only the schedule fields form the base class: a dataclass puts base
fields first, and keeping this prefix exactly the fields both configurations start with keeps
the key order of every ``run.json`` and model card as it was.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["ScheduleConfig", "append_jsonl", "learning_rate", "resumed_config"]

C = TypeVar("C", bound="ScheduleConfig")


@dataclass
class ScheduleConfig:
    """AdamW settings and the learning-rate schedule of a training run (see :func:`learning_rate`).

    Each run configuration subclasses this and sets its own defaults.
    """

    steps: int = 20_000
    batch_size: int = 128
    lr: float = 1e-3
    warmup: int = 500
    min_lr_ratio: float = 0.05
    weight_decay: float = 0.01
    grad_clip: float = 1.0


def learning_rate(step: int, cfg: ScheduleConfig) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio`` of the peak at ``steps``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr * (
        cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    )


def resumed_config(
    cls: type[C], saved: dict[str, Any], given: C | None, per_invocation: Iterable[str]
) -> C:
    """The configuration a resumed run continues with.

    The saved configuration wins, because changing the batch size or schedule half-way would
    no longer match an uninterrupted run; only the ``per_invocation`` settings of ``given``
    (how long to train this time, the device, ...) replace the saved ones. Runs saved before
    ``stream_order`` existed streamed in file order, so that is their default.
    """
    cfg = cls(**{"stream_order": "file", **saved})
    if given is not None:
        for name in per_invocation:
            setattr(cfg, name, getattr(given, name))
    return cfg


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one record to a JSON-lines log; the file is closed (so flushed) before
    returning, so a killed run keeps every line written."""
    with path.open("a") as fh:
        fh.write(json.dumps(record) + "\n")
