"""Where a crystal search's relaxations run: in this process, or on ``dask.distributed``.

Relaxations are the expensive, independent part of a search (seconds to minutes each), so a
batch of proposals can be relaxed at once on several workers. Two pools share one contract,
:meth:`RelaxationPool.map_unordered`: call ``fn(item, shared)`` for every item and yield the
outcomes *as they complete*, so that the search journals each result the moment it exists
(a ``kill -9`` then loses only the relaxations in flight).

- :class:`SerialPool`: one after the other, here; no start-up cost (the default for one
  worker, so that small runs stay fast).
- :class:`DaskPool`: a ``LocalCluster`` of process workers with one thread each (CHGNet's
  FIRE loop is Python and holds the GIL; processes, not threads, give the speed-up), or a
  client of an existing scheduler (``scheduler="tcp://host:8786"``). ``shared`` (the
  relaxer) is scattered to every worker once, so the potential is unpickled, and loaded,
  once per worker process, not once per task.

>>> with SerialPool() as pool:
...     sorted(out for _, out, _ in pool.map_unordered(lambda x, k: x * k, [1, 2], 10))
[10, 20]
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Generator, Sequence
from contextlib import ExitStack
from typing import Any, TypeVar

from matfuse.rows import first_line

logger = logging.getLogger(__name__)

__all__ = ["DaskPool", "RelaxationPool", "SerialPool", "default_workers", "make_pool"]

T = TypeVar("T")
R = TypeVar("R")
#: ``(item, result, error)``: ``error`` is set (and ``result`` ``None``) when the task itself
#: died, e.g. a worker killed for memory; the search records it as a failed candidate.
Outcome = tuple[T, R | None, str | None]


def default_workers() -> int:
    """CPU cores this process may use (its affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class RelaxationPool:
    """Runs ``fn(item, shared)`` over items; a context manager that owns its workers."""

    n_workers: int = 1
    description: str = "serial"

    def map_unordered(
        self, fn: Callable[[T, Any], R], items: Sequence[T], shared: Any = None
    ) -> Generator[Outcome[T, R], None, None]:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        return None

    def __enter__(self) -> RelaxationPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SerialPool(RelaxationPool):
    """Every item in this process, in order (exceptions from ``fn`` propagate)."""

    def map_unordered(
        self, fn: Callable[[T, Any], R], items: Sequence[T], shared: Any = None
    ) -> Generator[Outcome[T, R], None, None]:
        for item in items:
            yield item, fn(item, shared), None


class DaskPool(RelaxationPool):
    """Items as ``dask.distributed`` tasks; outcomes in completion order.

    ``workers`` process workers of one thread each on a new ``LocalCluster`` (default: the
    cores of this machine), or, with ``scheduler``, the workers of an existing cluster.
    ``processes=False`` keeps the workers as threads of this process (tests of the
    scheduling only: threads share the GIL and give no speed-up for ASE relaxations).
    """

    def __init__(
        self,
        workers: int | None = None,
        scheduler: str | None = None,
        *,
        processes: bool = True,
    ) -> None:
        from distributed import Client, LocalCluster

        self._stack = ExitStack()
        self._shared: dict[int, Any] = {}
        try:
            if scheduler is not None:
                self.client = self._stack.enter_context(Client(scheduler, timeout="20s"))
                self.description = f"dask scheduler {scheduler}"
            else:
                n = int(workers or default_workers())
                cluster = self._stack.enter_context(
                    LocalCluster(
                        n_workers=n,
                        threads_per_worker=1,
                        processes=processes,
                        dashboard_address=None,
                        silence_logs=logging.WARNING,
                    )
                )
                self.client = self._stack.enter_context(Client(cluster))
                self.description = f"dask LocalCluster, {n} workers x 1 thread"
        except BaseException:
            self._stack.close()
            raise
        self.n_workers = max(1, len(self.client.scheduler_info().get("workers", {})))
        # native libraries in the workers get one thread each, as the CLI promises
        self.client.run(_one_thread)

    def _scatter(self, shared: Any) -> Any:
        if shared is None:
            return None
        key = id(shared)
        if key not in self._shared:  # once per pool: every worker holds a copy
            self._shared[key] = (self.client.scatter(shared, broadcast=True, hash=False), shared)
        return self._shared[key][0]

    def map_unordered(
        self, fn: Callable[[T, Any], R], items: Sequence[T], shared: Any = None
    ) -> Generator[Outcome[T, R], None, None]:
        from distributed import as_completed

        if not items:
            return
        handle = self._scatter(shared)
        futures = [self.client.submit(fn, item, handle, pure=False) for item in items]
        which = {f.key: item for f, item in zip(futures, items, strict=True)}
        try:
            for future in as_completed(futures):
                item = which[future.key]
                try:
                    yield item, future.result(), None
                except Exception as exc:  # the task died: a failed candidate, not a crash
                    logger.warning("relaxation task died on a worker: %s", first_line(exc))
                    yield item, None, f"worker failed: {first_line(exc)}"
        finally:
            # a consumer that stops early (an interruption) leaves nothing running
            self.client.cancel([f for f in futures if not f.done()])

    def close(self) -> None:
        # a worker busy with a cancelled task is killed at shutdown: expected, not a warning
        quiet = [logging.getLogger(n) for n in ("distributed.nanny", "distributed.worker")]
        levels = [q.level for q in quiet]
        for q in quiet:
            q.setLevel(logging.ERROR)
        try:
            self._stack.close()
        finally:
            for q, level in zip(quiet, levels, strict=True):
                q.setLevel(level)


def _one_thread() -> None:
    """On each worker: one native thread for torch and BLAS (the relaxer also sets torch's)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch comes with chgnet
        pass


def make_pool(
    workers: int | None = 1, scheduler: str | None = None, *, processes: bool = True
) -> RelaxationPool:
    """A :class:`SerialPool` for one local worker, else a :class:`DaskPool`.

    ``workers=None`` means all cores of this machine. ``ValueError`` for ``workers < 1``.
    """
    if workers is not None and workers < 1:
        raise ValueError(f"workers {workers}: need at least 1")
    if scheduler is None and workers == 1:
        return SerialPool()
    return DaskPool(workers, scheduler, processes=processes)
