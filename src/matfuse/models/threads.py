"""Native-thread control, so that ``n_jobs`` means the number of threads actually used."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_limits

__all__ = ["limit_native_threads"]


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
