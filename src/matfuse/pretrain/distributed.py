"""Joining a ``torchrun`` process group: one helper for every training loop of the package.

``torchrun --nproc-per-node N`` starts N copies of a command with ``WORLD_SIZE``, ``RANK``
and ``LOCAL_RANK`` set; without them (a plain run) this is a no-op and the run is rank 0 of
1. Gloo on CPUs (what the tests use), NCCL when the run is on CUDA devices.
"""

from __future__ import annotations

import os

import torch

__all__ = ["init_distributed"]


def init_distributed(device: str) -> tuple[int, int]:
    """(rank, world size): joins the process group when started by ``torchrun``."""
    from matfuse.pretrain.trainer import resolve_device

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        on_gpu = resolve_device(device).startswith("cuda")
        dist.init_process_group("nccl" if on_gpu else "gloo")
        if on_gpu:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return dist.get_rank(), dist.get_world_size()
