"""Memory limits for the web UI's sessions: measure them, expire idle ones, evict the oldest.

A session holds its table (the parsed molecules or materials), cached encoder features and
a trained model; tens of megabytes each. Gradio keeps a closed tab's state for an hour and
an open one's until its time to live, so without limits a busy server only grows. Here:

* :class:`SessionLimits` — the idle timeout and the per-session and total memory caps, with
  defaults and ``MATFUSE_APP_*`` environment overrides;
* :func:`approx_nbytes` — a cheap estimate of what a Python object keeps in memory (numpy
  arrays, pandas frames, RDKit molecules and pymatgen objects included);
* :func:`plan_evictions` — the policy, a pure function: closed sessions first, then idle
  ones, then the least recently used until the total fits;
* :class:`SessionReaper` — applies the policy to Gradio's per-session store, on a timer, on
  demand and when a browser disconnects (``demo.unload``).

A session that is freed while its tab is still open keeps a one-line notice of why, which
its next action reports instead of failing obscurely.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

MB = 1_000_000


class SessionMemoryError(ValueError):
    """An action would take a session over its memory cap; the message is for the user."""


#: Set by a session whose memory grew (a load, new features, a model), so that the reaper
#: checks the total at once instead of at its next tick.
MEMORY_CHANGED = threading.Event()


@dataclass(frozen=True)
class SessionLimits:
    """How long an unused session lives and how much memory sessions may hold.

    ``session_mb`` bounds one session (its feature cache is dropped first, then the action
    that would exceed it is refused); ``total_mb`` bounds all sessions together (the least
    recently used are freed first). Sessions used within ``protect_s`` are never evicted
    for the total, so nobody loses the data they are working on right now.
    """

    idle_s: float = 45 * 60
    session_mb: float = 1024
    total_mb: float = 4096
    sweep_s: float = 30
    protect_s: float = 60

    @property
    def session_bytes(self) -> int:
        return int(self.session_mb * MB)

    @property
    def total_bytes(self) -> int:
        return int(self.total_mb * MB)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SessionLimits:
        """Defaults, overridden by ``MATFUSE_APP_IDLE_MINUTES``, ``MATFUSE_APP_SESSION_MB``,
        ``MATFUSE_APP_TOTAL_MB`` and ``MATFUSE_APP_SWEEP_S`` where set to a positive number.

        >>> SessionLimits.from_env({"MATFUSE_APP_IDLE_MINUTES": "30"}).idle_s
        1800.0
        """
        env = os.environ if env is None else env
        base = cls()

        def number(name: str, default: float, scale: float = 1.0) -> float:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                value = float(raw)
            except ValueError:
                logger.warning("ignoring %s=%r: not a number", name, raw)
                return default
            if value <= 0:
                logger.warning("ignoring %s=%r: not positive", name, raw)
                return default
            return value * scale

        return cls(
            idle_s=number("MATFUSE_APP_IDLE_MINUTES", base.idle_s, 60.0),
            session_mb=number("MATFUSE_APP_SESSION_MB", base.session_mb),
            total_mb=number("MATFUSE_APP_TOTAL_MB", base.total_mb),
            sweep_s=number("MATFUSE_APP_SWEEP_S", base.sweep_s),
            protect_s=base.protect_s,
        )


# --- size estimates ------------------------------------------------------------------------

#: RDKit keeps atoms, bonds and their property maps in C++; measured on the bundled
#: molecule sets, a parsed molecule costs about this much per atom plus bond.
_RDKIT_BYTES_PER_ATOM_OR_BOND = 400
_RDKIT_BYTES_PER_MOL = 1000
#: pymatgen sites are Python objects (species, coordinates, lattice reference, properties).
_PYMATGEN_BYTES_PER_SITE = 2500
_PYMATGEN_BYTES_PER_OBJECT = 2000
#: long sequences are sized from a sample, so that sizing 60 sessions stays cheap
_SAMPLE = 64
_MAX_DEPTH = 8


def approx_nbytes(obj: Any) -> int:
    """Roughly how many bytes ``obj`` keeps alive (shared objects counted once).

    An estimate for memory budgets, not an exact figure: numpy and pandas report their own
    buffers, RDKit molecules and pymatgen objects are sized by atom count, long lists by a
    sample, and anything else by walking its attributes.

    >>> approx_nbytes(np.zeros(1000)) >= 8000
    True
    """
    return _size(obj, set(), 0)


def _size(obj: Any, seen: set[int], depth: int) -> int:
    if obj is None or isinstance(obj, (bool, int, float, complex)):
        return 0
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, (str, bytes, bytearray)):
        return sys.getsizeof(obj)
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            return int(obj.nbytes) + _sequence(list(obj.ravel()), seen, depth)
        return int(obj.nbytes) if obj.base is None else 0
    special = _special_size(obj)
    if special is not None:
        return special
    if depth >= _MAX_DEPTH:
        return sys.getsizeof(obj)
    if isinstance(obj, dict):
        items = list(obj.items())
        return (
            sys.getsizeof(obj)
            + _sequence([v for _, v in items], seen, depth)
            + _sequence([k for k, _ in items], seen, depth)
        )
    if isinstance(obj, (list, tuple, set, frozenset)):
        return sys.getsizeof(obj) + _sequence(list(obj), seen, depth)
    state = _object_state(obj)
    if state is not None:
        return sys.getsizeof(obj) + _size(state, seen, depth + 1)
    return sys.getsizeof(obj)


def _sequence(items: Sequence[Any], seen: set[int], depth: int) -> int:
    if len(items) <= _SAMPLE:
        return sum(_size(item, seen, depth + 1) for item in items)
    step = len(items) / _SAMPLE
    sample = [items[int(i * step)] for i in range(_SAMPLE)]
    return int(sum(_size(item, seen, depth + 1) for item in sample) * len(items) / _SAMPLE)


def _special_size(obj: Any) -> int | None:
    """Objects whose memory lives outside Python's view of them; ``None`` for the rest."""
    module = type(obj).__module__ or ""
    name = type(obj).__name__
    if module.startswith("pandas"):
        if name == "DataFrame":
            return int(obj.memory_usage(deep=True).sum())
        if name in ("Series", "Index"):
            return int(obj.memory_usage(deep=True))
    if module.startswith("rdkit") and name == "Mol":
        return _RDKIT_BYTES_PER_MOL + _RDKIT_BYTES_PER_ATOM_OR_BOND * (
            obj.GetNumAtoms() + obj.GetNumBonds()
        )
    if module.startswith("pymatgen"):
        if name in ("Structure", "IStructure", "Molecule", "IMolecule"):
            return _PYMATGEN_BYTES_PER_OBJECT + _PYMATGEN_BYTES_PER_SITE * len(obj)
        if name in ("Composition", "Element", "Species", "Lattice"):
            return _PYMATGEN_BYTES_PER_OBJECT
    if module.startswith("torch") and hasattr(obj, "element_size") and hasattr(obj, "nelement"):
        return int(obj.element_size() * obj.nelement())
    return None


def _object_state(obj: Any) -> Any:
    """What an object holds: its ``__dict__``/slots, or its pickled state (sklearn trees)."""
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return vars(obj)
    if hasattr(type(obj), "__reduce_ex__") and type(obj).__module__.startswith("sklearn"):
        try:
            return obj.__getstate__()
        except Exception:  # noqa: BLE001 - sizing must never break serving
            return None
    return None


# --- the policy ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionUsage:
    """What the policy knows about one session."""

    key: str
    nbytes: int
    last_used: float
    closed: bool = False


def plan_evictions(
    usages: Iterable[SessionUsage], limits: SessionLimits, now: float
) -> list[tuple[str, str]]:
    """Which sessions to free, and why, in the order they should go.

    1. sessions whose browser has gone (``closed``);
    2. sessions unused for longer than ``limits.idle_s``;
    3. while the rest hold more than ``limits.total_bytes``: the least recently used, except
       those used within ``limits.protect_s``.
    """
    plan: list[tuple[str, str]] = []
    alive: list[SessionUsage] = []
    for usage in usages:
        if usage.closed:
            plan.append((usage.key, "closed"))
        elif now - usage.last_used > limits.idle_s:
            plan.append((usage.key, "idle"))
        else:
            alive.append(usage)
    total = sum(u.nbytes for u in alive)
    for usage in sorted(alive, key=lambda u: u.last_used):
        if total <= limits.total_bytes:
            break
        if now - usage.last_used < limits.protect_s or usage.nbytes == 0:
            continue
        plan.append((usage.key, "memory"))
        total -= usage.nbytes
    return plan


NOTICES = {
    "idle": "This session was reset after {minutes:.0f} minutes without use",
    "memory": "This session was reset because the server needed its memory for other users",
    "closed": "This session was closed",
}


def return_memory_to_os() -> None:
    """Collect cycles and ask glibc to hand freed heap pages back to the system.

    Without the trim, memory freed by a session is reused by the next ones but the process
    never shrinks (the allocator keeps its arenas); with it, the server's RSS falls back
    after sessions end. A no-op where there is no glibc.
    """
    gc.collect()
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        try:
            _MALLOC_TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _MALLOC_TRIM = False
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


_MALLOC_TRIM: Any = None


# --- applying it to Gradio's sessions ------------------------------------------------------


class SessionReaper:
    """Frees sessions of one Gradio app according to :func:`plan_evictions`.

    Gradio keeps, per browser session (``session_hash``), our ``SessionState`` plus its own
    copies of every component a handler updated; freeing a closed or idle session drops
    both. A session evicted for memory while its tab is open keeps Gradio's part (small)
    and gets a notice, so its next action explains that the data has to be loaded again.
    """

    def __init__(self, demo: Any, limits: SessionLimits) -> None:
        self.demo = demo
        self.limits = limits
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.freed: dict[str, int] = {}

    # gradio internals live behind these two methods only
    def _holder(self) -> Any:
        return getattr(self.demo, "state_holder", None)

    def _our_states(self, gradio_session: Any) -> list[Any]:
        from matfuse.app.state import SessionState

        data = getattr(gradio_session, "state_data", {})
        return [v for v in list(data.values()) if isinstance(v, SessionState)]

    def usages(self) -> list[SessionUsage]:
        holder = self._holder()
        if holder is None:
            return []
        out = []
        for key, gradio_session in list(holder.session_data.items()):
            states = self._our_states(gradio_session)
            stamp = holder.time_last_used.get(key)  # Gradio's: any event of the session
            stamps = [s.last_used for s in states] + ([stamp.timestamp()] if stamp else [])
            last = max(stamps) if stamps else time.time()
            out.append(
                SessionUsage(
                    key=key,
                    nbytes=sum(s.nbytes() for s in states),
                    last_used=last,
                    closed=bool(getattr(gradio_session, "is_closed", False)),
                )
            )
        return out

    def release(self, key: str, reason: str = "closed") -> bool:
        """Free one session now; ``True`` if there was anything to free."""
        holder = self._holder()
        if holder is None:
            return False
        with self._lock:
            gradio_session = holder.session_data.get(key)
            if gradio_session is None:
                return False
            notice = NOTICES.get(reason, reason).format(minutes=self.limits.idle_s / 60)
            for state in self._our_states(gradio_session):
                state.release(notice)
            if reason != "memory":  # the tab is gone or long idle: drop Gradio's copies too
                with holder.lock:
                    holder.session_data.pop(key, None)
                    holder.time_last_used.pop(key, None)
            self.freed[reason] = self.freed.get(reason, 0) + 1
        logger.info("freed session %s… (%s)", key[:8], reason)
        return True

    def sweep(self, now: float | None = None) -> list[tuple[str, str]]:
        """Apply the policy once; returns what was freed."""
        plan = plan_evictions(self.usages(), self.limits, time.time() if now is None else now)
        freed = [self.release(key, reason) for key, reason in plan]
        if any(freed):
            return_memory_to_os()
        return plan

    def on_unload(self, request: Any) -> None:
        """``demo.unload`` handler: the browser tab closed or reloaded."""
        key = getattr(request, "session_hash", None)
        if key and self.release(str(key), "closed"):
            return_memory_to_os()

    def start(self) -> None:
        """Sweep every ``limits.sweep_s`` seconds, and soon after a session grew."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="matfuse-session-reaper")
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        MEMORY_CHANGED.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            MEMORY_CHANGED.wait(timeout=self.limits.sweep_s)
            MEMORY_CHANGED.clear()
            if self._stop.is_set():
                break
            try:
                self.sweep()
            except Exception:  # noqa: BLE001 - the reaper must outlive any one bad sweep
                logger.exception("session sweep failed")
