"""Stages of long library work (encode each block, fit each target), for whoever listens.

The library does not draw progress bars: the loops that take time call :func:`stage`, and a
front end that wants to show them installs a listener around the call with
:func:`listen_stages` (the CLI's rich bar, the web UI's progress callback). Without a
listener a stage costs one context-variable lookup. The listener lives in a
:class:`~contextvars.ContextVar`, so each thread (each UI session's worker) has its own.

>>> seen = []
>>> with listen_stages(seen.append):
...     stage("encode", "ecfp", 0, 2)
>>> seen[0].label
'ecfp'
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["Stage", "StageListener", "listen_stages", "stage"]


@dataclass(frozen=True)
class Stage:
    """One step starting: ``step`` of ``total`` in ``phase`` (``encode``, ``fit``...)."""

    phase: str
    label: str
    step: int
    total: int

    @property
    def text(self) -> str:
        """``"encode ecfp (1/2)"``: what a progress line shows."""
        return f"{self.phase} {self.label} ({self.step + 1}/{self.total})"


StageListener = Callable[[Stage], object]
_LISTENER: ContextVar[StageListener | None] = ContextVar("matfuse_stage_listener", default=None)


def stage(phase: str, label: str, step: int, total: int) -> None:
    """Say that ``step`` (0-based) of ``total`` in ``phase`` starts, to the listener if any."""
    listener = _LISTENER.get()
    if listener is not None:
        listener(Stage(phase, label, step, total))


@contextmanager
def listen_stages(listener: StageListener) -> Iterator[None]:
    """Send every :func:`stage` reported inside the block to ``listener``."""
    token = _LISTENER.set(listener)
    try:
        yield
    finally:
        _LISTENER.reset(token)
