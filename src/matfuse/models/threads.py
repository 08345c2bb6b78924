"""Native-thread control, so that ``n_jobs`` means the number of threads actually used."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_limits

__all__ = ["limit_native_threads", "torch_threads"]


@contextmanager
def limit_native_threads(n_jobs: int | None) -> Iterator[None]:
    """Cap BLAS/OpenMP threads at ``n_jobs`` (no cap for None or n_jobs < 1).

    Why: ``n_jobs`` only reaches models that parallelise explicitly, but GP, kernel and linear
    fits spend their time in BLAS, which by default spawns a thread per core. On shared machines
    that oversubscription made a 300-row GP fit 30x slower in our measurements, so ``n_jobs`` is
    honoured for native threads too.
    """
    if n_jobs is None or n_jobs < 1:
        yield
        return
    with threadpool_limits(limits=n_jobs):
        yield


@contextmanager
def torch_threads(n_threads: int | None) -> Iterator[None]:
    """Run torch and BLAS with at most ``n_threads`` threads (no limit for None).

    Why: the graphs and batches of our small networks (CHGNet on small cells, learned fusion,
    transfer and fine-tuning heads) are too small to split across threads, and on a shared
    machine the threads' spin-waiting made a 14-step NaCl relaxation take 35 s with 2 threads
    against 0.3 s with 1 (torch plus the BLAS calls of ASE's cell filter). torch is imported
    only when a limit applies, so importing this module stays light.
    """
    if n_threads is None or n_threads < 1:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        with limit_native_threads(n_threads):
            yield
    finally:
        torch.set_num_threads(before)
